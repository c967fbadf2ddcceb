"""Measuring training speed: real demo faces, timed optimizer steps, peak memory, matmul peak FLOP/s.

Used by ``facelab bench train`` (``facelab.bench.stages``) and by the tests, for real face batches. Numbers, not
judgements.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facelab.geometry.masks import hull_mask
from facelab.train.loop import AUTOENCODER
from facelab.train.models.base import SwapModel
from facelab.train.optim import OptimizerFactory, new_adam
from facelab.train.precision import autocast_context, preferred_memory_format


def demo_faces(video: Path, count: int, resolution: int, face_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Aligned faces from ``count`` frames spread over ``video``: (N, R, R, 3) uint8 BGR and (N, R, R) float32
    landmark-hull masks. Frames without a face are skipped, so N can be below ``count``."""
    import av

    from facelab.extract import extract_faces

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 100
        wanted = set(np.linspace(0, total - 1, count).round().astype(int).tolist())
        frames = [f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(stream)) if i in wanted]
    images, masks = [], []
    for frame in frames:
        faces = extract_faces(frame, face_type=face_type, image_size=resolution, max_faces=1)
        for image, meta in faces:
            images.append(image)
            masks.append(hull_mask(meta.landmarks, resolution, resolution))
    return np.stack(images), np.stack(masks)


def to_batch_tensors(images: np.ndarray, masks: np.ndarray, device: torch.device | str = "cpu"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, R, R, 3) uint8 and (N, R, R) float → (N, 3, R, R) float32 in [0, 1] and (N, 1, R, R)."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255).contiguous()
    return x, torch.from_numpy(masks).to(device)[:, None].float()


def training_batch(src: tuple[torch.Tensor, torch.Tensor], dst: tuple[torch.Tensor, torch.Tensor],
                   index: torch.Tensor) -> dict[str, torch.Tensor]:
    """A model batch from face/mask tensors: rows ``index`` of each side; inputs are the targets (unwarped)."""
    s, sm = src[0][index % len(src[0])], src[1][index % len(src[1])]
    d, dm = dst[0][index % len(dst[0])], dst[1][index % len(dst[1])]
    return {"src": s, "dst": d, "src_target": s, "dst_target": d, "src_mask": sm, "dst_mask": dm}


@dataclass(frozen=True)
class StepLog:
    """What ``StepRunner.run`` saw per step: wall seconds, process CPU seconds (every thread of this process; on a
    shared machine the work done, where wall time also counts the waits for a core) and the total loss."""

    seconds: list[float]
    cpu_seconds: list[float]
    losses: list[float]


class StepRunner:
    """Training steps of ``model`` (forward_train + loss + backward + optimizer step) in the trainer's layout, with
    the optimizer ``factory`` makes (None: the model's own, ``optimizer_factory``: Adam for SAE, AdaBelief for SAEHD
    at its defaults). The optimizer lives as long as the runner, so later steps (e.g. profiled ones) run in the
    steady state, their moments already allocated."""

    def __init__(self, model: SwapModel, *, amp: str = "off", lr: float = 5e-5, swap: bool = True,
                 factory: OptimizerFactory | None = None):
        self.model, self.amp, self.swap = model, amp, swap
        self.device = next(model.parameters()).device
        self.memory_format = preferred_memory_format(self.device, amp)
        model.to(memory_format=self.memory_format)
        self.optimizer = (factory or model.optimizer_factory(AUTOENCODER))(model.param_groups(), lr, self.device)

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[float, float, float]:
        """One step: (wall seconds, process CPU seconds, total loss)."""
        batch = {k: v.contiguous(memory_format=self.memory_format) for k, v in batch.items()}  # before the clock
        self.model.train()
        start, cpu_start = time.perf_counter(), time.process_time()
        with autocast_context(self.device, self.amp):
            out = self.model.forward_train(batch["src"], batch["dst"], swap=self.swap)
        loss = self.model.loss(batch, out)["total"]
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        total = float(loss.detach())  # syncs, so the time below includes the whole step
        return time.perf_counter() - start, time.process_time() - cpu_start, total

    def run(self, batches: list[dict[str, torch.Tensor]]) -> StepLog:
        log = StepLog([], [], [])
        for batch in batches:
            wall, cpu, total = self(batch)
            log.seconds.append(wall)
            log.cpu_seconds.append(cpu)
            log.losses.append(total)
        return log


def timed_steps(model: SwapModel, batches: list[dict[str, torch.Tensor]], *, amp: str = "off", lr: float = 5e-5,
                swap: bool = True, factory: OptimizerFactory | None = None) -> StepLog:
    """One step per batch with a fresh ``StepRunner`` (its arguments)."""
    return StepRunner(model, amp=amp, lr=lr, swap=swap, factory=factory).run(batches)


def train_steps(model: SwapModel, batches: list[dict[str, torch.Tensor]], *, amp: str = "off", lr: float = 5e-5,
                swap: bool = True) -> tuple[list[float], list[float]]:
    """``timed_steps`` with Adam (whatever the model's own optimizer) as (seconds, total loss) per step."""
    log = timed_steps(model, batches, amp=amp, lr=lr, swap=swap, factory=new_adam)
    return log.seconds, log.losses


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class Timing:
    median_ms: float
    q1_ms: float
    q3_ms: float
    iterations: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        ms = [s * 1000 for s in seconds]
        q1, _, q3 = statistics.quantiles(ms, n=4) if len(ms) > 1 else (ms[0], ms[0], ms[0])
        return cls(statistics.median(ms), q1, q3, len(ms))
