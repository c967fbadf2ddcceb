"""One training run: each iteration asks whether to stop, answers the UI, trains one step, saves when due.

A step is the model's autoencoder step (``forward_train`` + ``loss``, then its optimizer), followed by one step
of each extra part the model declares (``SwapModel.extra_parts``: its own loss on the detached outputs, its own
optimizer). A NaN/inf loss rolls everything back to the last save.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from facelab.errors import DeviceError, ModelError
from facelab.train import checkpoint, control
from facelab.train.precision import autocast_context, needs_grad_scaler, preferred_memory_format
from facelab.train.preview import loss_graph, preview_grid, write_png

log = logging.getLogger(__name__)

MAX_ROLLBACKS = 3
PREVIEW_FACES = 4
AUTOENCODER = "model"  # the autoencoder's optimizer in the OptimizerSet; extra parts use their own names


@dataclass(frozen=True)
class IterationReport:
    """What the console line shows after each iteration (``event``: "saved", "rolled back" or None).

    ``part_losses``: the loss of each extra part this iteration (empty for models without extra parts)."""

    iteration: int
    ms: float
    loss_src: float
    loss_dst: float
    event: str | None = None
    part_losses: dict[str, float] = field(default_factory=dict)


class TrainStep(nn.Module):
    """The model's losses as one module call, so DDP can wrap it (and average the gradients of every part).

    ``step(batch)`` → (autoencoder losses, outputs); ``step(batch, part=name, out=outputs)`` → that extra part's
    loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.parts = model.extra_parts()

    def forward(self, batch: dict[str, torch.Tensor], part: str | None = None,
                out: dict[str, torch.Tensor] | None = None):
        if part is not None:
            return self.parts[part].loss(batch, out)
        # No dst→src decode for the step itself (style losses still get theirs): ~13 % fewer FLOPs.
        out = self.model.forward_train(batch["src"], batch["dst"], swap=False)
        return self.model.loss(batch, out), out


class TrainLoop:
    """One training run's mutable parts; ``run`` returns why it stopped.

    ``opts`` are this run's options (saved ones plus run-only flags); ``saved_options`` what each save writes
    as the model's options.
    """

    def __init__(self, model, optimizers, feeder, files, opts, state, dist, caches, on_iteration, saved_options):
        self.model, self.optimizers, self.feeder, self.files = model, optimizers, feeder, files
        self.opts, self.saved_options, self.state, self.dist = opts, saved_options, state, dist
        self.on_iteration = on_iteration if dist.is_main else None
        self.step = dist.wrap(TrainStep(model))
        self.part_names = [name for name, part in model.extra_parts().items() if part.active]
        self.autocast = lambda: autocast_context(dist.device, opts["amp"])
        self.memory_format = preferred_memory_format(dist.device, opts["amp"])
        self.scaler = torch.amp.GradScaler(dist.device.type, enabled=needs_grad_scaler(dist.device, opts["amp"]))
        self.preview = preview_batch(caches, opts["preview_face"], dist.device)
        self.last_src = self.last_dst = math.nan
        self.last_save = self.last_backup = time.monotonic()
        self.rollbacks = 0
        # Requests from the browser UI and the status it shows (train/control.py); the main process only.
        self.control = control.TrainerControl(files.folder, files.name) if dist.is_main else None

    def run(self, max_iterations: int | None, max_seconds: float | None,
            stop_requested: Callable[[], str | None]) -> str:
        reason = "error"
        try:
            reason = self._run(max_iterations, max_seconds, stop_requested)
            return reason
        finally:
            if self.control:
                # A status the UI cannot get (e.g. a full disk) must not replace the error that stopped the run.
                with contextlib.suppress(OSError):
                    self.control.write(self.state, running=False, stopped_by=reason)

    def _run(self, max_iterations, max_seconds, stop_requested) -> str:
        start, done = time.monotonic(), 0
        self.model.train()
        while True:
            reason = self._stop_reason(done, max_iterations, time.monotonic() - start, max_seconds, stop_requested)
            save_due = time.monotonic() - self.last_save >= self.opts["save_minutes"] * 60
            save_asked, stop_asked = self._ui_request()
            reason = reason or ("user" if stop_asked else None)
            stop, save = self.dist.agree([reason is not None, save_due or save_asked])
            if stop:
                if self.dist.is_main:
                    self.save(event=False)
                return reason or "other process"
            if save and self.dist.is_main:
                self.save(event=True)
            done += self._iterate()

    def _stop_reason(self, done: int, max_iterations: int | None, seconds: float, max_seconds: float | None,
                     stop_requested: Callable[[], str | None]) -> str | None:
        """Why to stop before the next iteration (None: go on); the caller is asked last."""
        target = self.opts["target_iteration"]
        if target and self.state.iteration >= target:
            return "target"
        if max_iterations is not None and done >= max_iterations:
            return "iterations"
        if max_seconds is not None and seconds >= max_seconds:
            return "time"
        return stop_requested()

    def _ui_request(self) -> tuple[bool, bool]:
        """(save asked, stop asked) by the browser UI; a preview request is answered at once."""
        asked = self.control.poll() if self.control else None
        if asked == "preview":
            self.write_preview()
            self.control.write(self.state)
        return asked in ("save", "save_and_stop"), asked == "save_and_stop"

    def _iterate(self) -> int:
        """Train one step and record it: 1, or 0 when a loss was NaN/inf and the model rolled back."""
        t0 = time.perf_counter()
        losses, part_losses = self._train_one()
        if self.dist.agree([not all(math.isfinite(v) for v in (*losses, *part_losses.values()))])[0]:
            self._roll_back()
            return 0
        self.state.iteration += 1
        self.last_src, self.last_dst = losses
        self.state.loss_src.append(losses[0])
        self.state.loss_dst.append(losses[1])
        ms = (time.perf_counter() - t0) * 1000
        if self.control:
            self.control.iteration_done(self.state, ms)
        if self.on_iteration:
            self.on_iteration(IterationReport(self.state.iteration, ms, *losses, part_losses=part_losses))
        return 1

    def _train_one(self) -> tuple[tuple[float, float], dict[str, float]]:
        """One step of the autoencoder, then of each extra part: ((src loss, dst loss), {part: loss})."""
        batch = to_tensors(self.feeder.next(), self.dist.device, self.memory_format)
        try:
            with self.autocast():
                losses, out = self.step(batch)
            optimizer = self.optimizers[AUTOENCODER]
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(losses["total"]).backward()
            values = (float(losses["src"].detach()), float(losses["dst"].detach()))
            part_losses: dict[str, float] = {}
            if all(math.isfinite(v) for v in values):
                self.scaler.step(optimizer)
                part_losses = self._train_parts(batch, {k: v.detach() for k, v in out.items()})
                self.scaler.update()
            return values, part_losses
        except torch.OutOfMemoryError:
            raise DeviceError(
                f"out of GPU memory at batch size {self.opts['batch_size']}, resolution {self.model.resolution}",
                fix="lower --batch-size, use --optimizer-mode 2 or 3, or start a new model with smaller "
                    "dims/resolution") from None

    def _train_parts(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimizer step of each extra part on its loss; the part's gradients from the autoencoder's
        backward (a GAN term) are cleared first."""
        values = {}
        for name in self.part_names:
            with self.autocast():
                loss = self.step(batch, part=name, out=out)
            optimizer = self.optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            values[name] = float(loss.detach())
            if math.isfinite(values[name]):
                self.scaler.step(optimizer)
        return values

    def _roll_back(self) -> None:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise ModelError(f"the loss became NaN/inf {self.rollbacks} times", path=self.files.folder,
                             fix="lower --learning-rate or --batch-size, or restore a backup from autobackups/")
        bad = self.state.iteration
        checkpoint.load_weights(self.files, self.model, self.dist.device)
        self.state = checkpoint.load_state(self.files, self.optimizers)
        log.warning("the loss became NaN/inf at iteration %d: rolled back to the last save (iteration %d)",
                    bad + 1, self.state.iteration)
        if self.on_iteration:
            self.on_iteration(IterationReport(self.state.iteration, 0.0, math.nan, math.nan, "rolled back"))

    def save(self, event: bool) -> None:
        """Save the model (weights of every part, every optimizer, RNG states), the preview and the loss graph;
        an autobackup when due."""
        self.state.torch_rng = torch.get_rng_state()
        self.state.sample_rng = self.feeder.rng_state
        checkpoint.save(self.files, self.model, self.optimizers, self.saved_options, self.state)
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


def preview_batch(caches, first: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The first PREVIEW_FACES faces of each side from index ``first`` on (wrapping), (N, 3, R, R) in [0, 1]."""
    out = {}
    for side, cache in zip(("src", "dst"), caches):
        idx = [(first + i) % len(cache) for i in range(min(PREVIEW_FACES, len(cache)))]
        faces = np.stack([cache.faces[i] for i in idx])
        out[side] = torch.from_numpy(faces).to(device).permute(0, 3, 1, 2).float().div(255)
    return out


def to_tensors(batch: dict[str, np.ndarray], device: torch.device, memory_format: torch.memory_format
               ) -> dict[str, torch.Tensor]:
    """uint8 NHWC / NHW arrays → float32 NCHW tensors in [0, 1] on ``device`` (converted after the upload)."""
    out = {}
    for key, value in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(value)).to(device, non_blocking=True)
        t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
        t = t.float().div_(255)
        out[key] = t.contiguous(memory_format=memory_format)
    return out


@contextlib.contextmanager
def stop_signals():
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
