"""The training loop: create or resume a model, feed it augmented batches, save safely, stop cleanly.

Saves happen every ``save_minutes``, when stopped (target iteration, time or iteration limit, Ctrl-C, SIGTERM,
the caller's ``should_stop``) and never leave a half-written model (see ``checkpoint``). A NaN/inf loss rolls
the model back to its last save. Several GPUs: start with ``torchrun --nproc-per-node N`` — each process trains
on its own GPU with DDP, rank 0 saves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from facelab.device import resolve_devices
from facelab.errors import DeviceError, ModelError
from facelab.options import Option, validate
from facelab.progress import ProgressCallback, no_progress
from facelab.train import checkpoint, control
from facelab.train.checkpoint import ModelFiles, TrainState
from facelab.train.models import MODELS
from facelab.train.models.base import AMP_OPTION, autocast_context, needs_grad_scaler, preferred_memory_format
from facelab.train.optim import new_adam
from facelab.train.options import model_option_specs, resume_options
from facelab.train.preview import loss_graph, preview_grid, write_png
from facelab.train.samples import FaceCache, FeedSettings, SampleFeeder, default_workers

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3
PREVIEW_FACES = 4


@dataclass(frozen=True)
class IterationReport:
    """What the console line shows after each iteration (``event``: "saved", "rolled back" or None)."""

    iteration: int
    ms: float
    loss_src: float
    loss_dst: float
    event: str | None = None


@dataclass(frozen=True)
class TrainResult:
    iteration: int
    loss_src: float
    loss_dst: float
    stopped_by: str  # "target", "iterations", "time", "signal", "user"
    model_dir: Path


def build_model(model_name: str, options: dict[str, Any]) -> nn.Module:
    """A new model of ``model_name`` from the (validated) options; only the model's own keys are passed on."""
    cls = MODELS.get(model_name)
    return cls({o.name: options[o.name] for o in cls.option_specs})


def option_specs(model_name: str) -> tuple[Option, ...]:
    """Every option of a training run of ``model_name``: common trainer options, mixed precision, the model's."""
    own = MODELS.get(model_name).option_specs
    return model_option_specs(own if any(o.name == AMP_OPTION.name for o in own) else (AMP_OPTION, *own))


def model_options(model_dir: Path, model_name: str, given: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(validated options, whether the model exists): saved options updated by ``given`` for an existing model
    (fixed ones must match), else ``given`` validated against the model's options."""
    specs = option_specs(model_name)
    files = ModelFiles(Path(model_dir), model_name)
    if files.exists():
        return resume_options(specs, checkpoint.load_options(files), given), True
    return validate(specs, given), False


def train_model(model_dir: Path, src_aligned: Path, dst_aligned: Path, model_name: str, options: dict,
                *, max_iterations: int | None = None, max_seconds: float | None = None, device: str = "auto",
                progress: ProgressCallback = no_progress, pretrain_faceset: Path | None = None,
                on_iteration: Callable[[IterationReport], None] | None = None,
                should_stop: Callable[[], bool] | None = None, seed: int | None = None) -> TrainResult:
    """Create (or resume) ``model_name`` in ``model_dir`` and train it on the two aligned folders.

    ``pretrain_faceset``: train both sides on this one faceset instead; the iteration count restarts when
    real training follows. ``seed`` fixes weights init and sampling (with ``workers`` 0, also across resumes).
    """
    model_dir = Path(model_dir)
    opts, exists = model_options(model_dir, model_name, options)
    # SAE saves its pretrain faceset as an option (the seed's way); other models take it per run.
    pretrain_faceset = pretrain_faceset or opts.get("pretrain_faceset") or None
    files = ModelFiles(model_dir, model_name)
    dist = _Distributed.start(device)
    if seed is not None:
        torch.manual_seed(seed + dist.rank)
    model = build_model(model_name, opts).to(dist.device)
    if opts["optimizer_mode"] == 3:
        model.use_checkpointing = True
    model = model.to(memory_format=preferred_memory_format(dist.device, opts["amp"]))
    optimizer = _make_optimizer(model, opts, dist.device)
    state = TrainState(pretrained=pretrain_faceset is not None)
    if exists:
        checkpoint.load_weights(files, model, dist.device)
        state = checkpoint.load_state(files, optimizer)
        for group in optimizer.param_groups:
            group["lr"] = opts["learning_rate"]
        if state.pretrained and pretrain_faceset is None:
            log.warning("%s was pretrained: its iteration count restarts for real training", model_name)
            state = TrainState()
        state.pretrained = state.pretrained or pretrain_faceset is not None
    workers = default_workers() if opts["workers"] < 0 else opts["workers"]
    caches: tuple[FaceCache, ...] = ()
    feeder = None
    try:
        caches = _load_faces(pretrain_faceset, src_aligned, dst_aligned, model, progress)
        feeder = SampleFeeder(caches[0], caches[1], FeedSettings(opts["batch_size"], opts["random_flip"],
                                                                 opts["sort_by_yaw"], opts["src_scale_mod"]),
                              workers=workers, seed=(seed or 0) + dist.rank * 7919)
        if exists and state.torch_rng is not None:
            torch.set_rng_state(state.torch_rng)
        if exists and state.sample_rng is not None and workers == 0:
            feeder.rng_state = state.sample_rng
        loop = _Loop(model, optimizer, feeder, files, opts, state, dist, caches, on_iteration)
        if not exists and dist.is_main:
            loop.save(event=False)
        dist.barrier()
        with _stop_signals() as signalled:
            stopped_by = loop.run(max_iterations, max_seconds,
                                  lambda: "signal" if signalled.is_set() else "user" if should_stop and should_stop() else None)
    finally:
        if feeder is not None:
            feeder.close()
        for cache in {id(c): c for c in caches}.values():
            cache.close()
        dist.close()
    return TrainResult(loop.state.iteration, loop.last_src, loop.last_dst, stopped_by, model_dir)


class _Loop:
    """One training run's mutable parts; ``run`` returns why it stopped."""

    def __init__(self, model, optimizer, feeder, files, opts, state, dist, caches, on_iteration):
        self.model, self.optimizer, self.feeder, self.files = model, optimizer, feeder, files
        self.opts, self.state, self.dist = opts, state, dist
        self.on_iteration = on_iteration if dist.is_main else None
        self.step = dist.wrap(_TrainStep(model))
        self.autocast = lambda: autocast_context(dist.device, opts["amp"])
        self.memory_format = preferred_memory_format(dist.device, opts["amp"])
        self.scaler = torch.amp.GradScaler(dist.device.type, enabled=needs_grad_scaler(dist.device, opts["amp"]))
        self.preview = _preview_batch(caches, opts["preview_face"], dist.device)
        self.last_src = self.last_dst = math.nan
        self.last_save = self.last_backup = time.monotonic()
        self.rollbacks = 0
        # Requests from the browser UI and the status it shows (train/control.py); the main process only.
        self.control = control.TrainerControl(files.folder, files.name) if dist.is_main else None

    def run(self, max_iterations, max_seconds, stop_requested) -> str:
        reason = "error"
        try:
            reason = self._run(max_iterations, max_seconds, stop_requested)
            return reason
        finally:
            if self.control:
                self.control.write(self.state, running=False, stopped_by=reason)

    def _run(self, max_iterations, max_seconds, stop_requested) -> str:
        start, done = time.monotonic(), 0
        target = self.opts["target_iteration"]
        self.model.train()
        while True:
            reason = None
            if target and self.state.iteration >= target:
                reason = "target"
            elif max_iterations is not None and done >= max_iterations:
                reason = "iterations"
            elif max_seconds is not None and time.monotonic() - start >= max_seconds:
                reason = "time"
            else:
                reason = stop_requested()
            save_due = time.monotonic() - self.last_save >= self.opts["save_minutes"] * 60
            asked = self.control.poll() if self.control else None
            if asked == "preview":
                self.write_preview()
                self.control.write(self.state)
            save_due = save_due or asked in ("save", "save_and_stop")
            reason = reason or ("user" if asked == "save_and_stop" else None)
            stop, save, _ = self.dist.agree([reason is not None, save_due, False])
            if stop:
                if self.dist.is_main:
                    self.save(event=False)
                return reason or "other process"
            if save and self.dist.is_main:
                self.save(event=True)
            t0 = time.perf_counter()
            losses = self._train_one()
            if self.dist.agree([False, False, not all(math.isfinite(v) for v in losses)])[2]:
                self._roll_back()
                continue
            self.state.iteration += 1
            done += 1
            self.last_src, self.last_dst = losses
            self.state.loss_src.append(losses[0])
            self.state.loss_dst.append(losses[1])
            ms = (time.perf_counter() - t0) * 1000
            if self.control:
                self.control.iteration_done(self.state, ms)
            if self.on_iteration:
                self.on_iteration(IterationReport(self.state.iteration, ms, *losses))

    def _train_one(self) -> tuple[float, float]:
        batch = _to_tensors(self.feeder.next(), self.dist.device, self.memory_format)
        try:
            with self.autocast():
                losses = self.step(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(losses["total"]).backward()
            values = (float(losses["src"].detach()), float(losses["dst"].detach()))
            if all(math.isfinite(v) for v in values):
                self.scaler.step(self.optimizer)
                self.scaler.update()
            return values
        except torch.OutOfMemoryError:
            raise DeviceError(
                f"out of GPU memory at batch size {self.opts['batch_size']}, resolution {self.model.resolution}",
                fix="lower --batch-size, use --optimizer-mode 2 or 3, or start a new model with smaller "
                    "dims/resolution") from None

    def _roll_back(self) -> None:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise ModelError(f"the loss became NaN/inf {self.rollbacks} times", path=self.files.folder,
                             fix="lower --learning-rate or --batch-size, or restore a backup from autobackups/")
        bad = self.state.iteration
        checkpoint.load_weights(self.files, self.model, self.dist.device)
        self.state = checkpoint.load_state(self.files, self.optimizer)
        log.warning("the loss became NaN/inf at iteration %d: rolled back to the last save (iteration %d)",
                    bad + 1, self.state.iteration)
        if self.on_iteration:
            self.on_iteration(IterationReport(self.state.iteration, 0.0, math.nan, math.nan, "rolled back"))

    def save(self, event: bool) -> None:
        self.state.torch_rng = torch.get_rng_state()
        self.state.sample_rng = self.feeder.rng_state
        checkpoint.save(self.files, self.model, self.optimizer, self.opts, self.state)
        folder, name, it = self.files.folder, self.files.name, self.state.iteration
        grid = self.write_preview()
        write_png(folder / f"{name}_loss.png", loss_graph(self.state.loss_src, self.state.loss_dst))
        if self.opts["write_preview_history"]:
            write_png(folder / "preview_history" / f"{name}_{it:08d}.png", grid)
        hours = self.opts["autobackup_hours"]
        if hours and time.monotonic() - self.last_backup >= hours * 3600:
            checkpoint.autobackup(self.files, it)
            self.last_backup = time.monotonic()
        self.last_save = time.monotonic()
        if self.control:
            self.control.saved(self.state)
        if event and self.on_iteration:
            self.on_iteration(IterationReport(it, 0.0, self.last_src, self.last_dst, "saved"))

    def write_preview(self) -> np.ndarray:
        """Render the preview grid of the current weights to ``<MODEL>_preview.png``; returns it (H, W, 3) BGR."""
        grid = preview_grid(self._predict_preview(), self.state.iteration)
        write_png(self.files.folder / f"{self.files.name}_preview.png", grid)
        return grid

    @torch.no_grad()
    def _predict_preview(self) -> dict[str, np.ndarray]:
        self.model.eval()
        try:
            out = self.model.forward_train(self.preview["src"], self.preview["dst"])
        finally:
            self.model.train()
        rows = {"src": self.preview["src"], "dst": self.preview["dst"], **out}
        return {k: rows[k].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() for k in
                ("src", "src_src", "dst", "dst_dst", "dst_src")}


class _TrainStep(nn.Module):
    """forward = the model's forward_train + loss, so DDP can wrap one module call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # No dst→src decode for the step itself (style losses still get theirs): ~13 % fewer FLOPs.
        return self.model.loss(batch, self.model.forward_train(batch["src"], batch["dst"], swap=False))


def _load_faces(pretrain: Path | None, src: Path, dst: Path, model, progress) -> tuple[FaceCache, FaceCache]:
    ft, res = str(getattr(model.face_type, "value", model.face_type)), model.resolution
    if pretrain is not None:
        cache = FaceCache.build(Path(pretrain), ft, res, progress, "Loading pretrain faces")
        return cache, cache
    src_cache = FaceCache.build(Path(src), ft, res, progress, "Loading src faces")
    try:
        return src_cache, FaceCache.build(Path(dst), ft, res, progress, "Loading dst faces")
    except BaseException:
        src_cache.close()
        raise


def _preview_batch(caches: tuple[FaceCache, FaceCache], first: int, device: torch.device) -> dict[str, torch.Tensor]:
    out = {}
    for side, cache in zip(("src", "dst"), caches):
        idx = [(first + i) % len(cache) for i in range(min(PREVIEW_FACES, len(cache)))]
        faces = np.stack([cache.faces[i] for i in idx])
        out[side] = torch.from_numpy(faces).to(device).permute(0, 3, 1, 2).float().div(255)
    return out


def _to_tensors(batch: dict[str, np.ndarray], device: torch.device, memory_format: torch.memory_format
                ) -> dict[str, torch.Tensor]:
    """uint8 NHWC / NHW arrays → float32 NCHW tensors in [0, 1] on ``device`` (converted after the upload)."""
    out = {}
    for key, value in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(value)).to(device, non_blocking=True)
        t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
        t = t.float().div_(255)
        out[key] = t.contiguous(memory_format=memory_format)
    return out


def _make_optimizer(model: nn.Module, opts: dict[str, Any], device: torch.device):
    groups = list(model.param_groups())
    if opts["optimizer_mode"] >= 2 and device.type == "cuda":
        return _CpuAdam(groups, lr=opts["learning_rate"])
    return new_adam(groups, opts["learning_rate"], device)


class _CpuAdam:
    """Adam whose moments and fp32 master weights live in (pinned) CPU RAM: GPU memory holds only the model
    and its gradients (optimizer modes 2 and 3). Same state_dict layout as torch.optim.Adam."""

    def __init__(self, groups: list, lr: float):
        self._gpu: list[torch.Tensor] = []
        cpu_groups = []
        for group in groups:
            params = group["params"] if isinstance(group, dict) else [group]
            cpu = [p.detach().to("cpu", copy=True).pin_memory().requires_grad_(True) for p in params]
            self._gpu.extend(params)
            cpu_groups.append({**group, "params": cpu} if isinstance(group, dict) else {"params": cpu})
        self._cpu = [p for g in cpu_groups for p in g["params"]]
        self.inner = new_adam(cpu_groups, lr, "cpu")
        self.param_groups = self.inner.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._gpu:
            p.grad = None

    def step(self) -> None:
        for g, c in zip(self._gpu, self._cpu):
            c.grad = None if g.grad is None else g.grad.to("cpu", torch.float32)
        self.inner.step()
        with torch.no_grad():
            for g, c in zip(self._gpu, self._cpu):
                g.copy_(c, non_blocking=True)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        self.inner.load_state_dict(sd)
        with torch.no_grad():  # the master copies follow the freshly loaded GPU weights
            for g, c in zip(self._gpu, self._cpu):
                c.copy_(g.detach().cpu())


@contextlib.contextmanager
def _stop_signals():
    """An Event set by SIGINT/SIGTERM while training (so the loop saves, then stops); handlers restored after."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, lambda *_: flag.set())
    try:
        yield flag
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@dataclass
class _Distributed:
    """This process's place in a torchrun job (world size 1 without one)."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @classmethod
    def start(cls, spec: str) -> "_Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            device = resolve_devices(spec)[0]
            if device.type == "cpu":
                torch.set_num_threads(os.cpu_count() or 1)
            return cls(device)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            if local >= torch.cuda.device_count():
                raise DeviceError(f"torchrun started more processes than GPUs ({torch.cuda.device_count()})",
                                  fix="use --nproc-per-node equal to the GPU count")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device, torch.distributed.get_rank(), world)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world <= 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def agree(self, flags: list[bool]) -> list[bool]:
        """Each flag true on any process (so all processes stop, save or roll back together)."""
        if self.world <= 1:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
