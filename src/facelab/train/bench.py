"""Measuring training speed: real demo faces, timed Adam steps, peak memory, matmul peak FLOP/s.

Used by ``benchmarks/bench_train.py`` (and the tests, for real face batches). Numbers, not judgements.
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
from facelab.train.models.base import SwapModel
from facelab.train.precision import autocast_context, preferred_memory_format
from facelab.train.optim import new_adam


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


def train_steps(model: SwapModel, batches: list[dict[str, torch.Tensor]], *, amp: str = "off", lr: float = 5e-5,
                swap: bool = True) -> tuple[list[float], list[float]]:
    """One Adam step per batch (forward_train + loss + backward + step). Returns seconds and total loss per step."""
    device = next(model.parameters()).device
    fmt = preferred_memory_format(device, amp)  # the trainer's layout, set up before the clock runs
    model.to(memory_format=fmt)
    batches = [{k: v.contiguous(memory_format=fmt) for k, v in b.items()} for b in batches]
    optimizer = new_adam(model.param_groups(), lr, device)
    model.train()
    seconds, totals = [], []
    for batch in batches:
        start = time.perf_counter()
        with autocast_context(device, amp):
            out = model.forward_train(batch["src"], batch["dst"], swap=swap)
        loss = model.loss(batch, out)["total"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        totals.append(float(loss.detach()))  # syncs, so the time below includes the whole step
        seconds.append(time.perf_counter() - start)
    return seconds, totals


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
