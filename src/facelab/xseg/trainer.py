"""Training XSeg: resumable, saved atomically as MODEL_DIR/xseg/XSeg_* with the swap models' save format
(``train.checkpoint``: safetensors weights and optimizer, JSON options and history, one rename per save), and
the same status/preview files (``train.control``), so the web UI's Training page shows it at
``/training?folder=model/xseg``.

Loss: binary cross-entropy on the logits plus soft Dice (1 − 2|P∩T| / (|P| + |T|)), which keeps thin parts of the
mask (the chin's edge, a strand of hair) from drowning in the many easy background pixels. The history's
``loss_src`` holds that loss, ``loss_dst`` 1 − IoU of each batch (thresholded at 0.5).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facelab.device import resolve_devices
from facelab.errors import ModelError
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.train import checkpoint, control, schedule
from facelab.train.checkpoint import ModelFiles, TrainState
from facelab.train.preview import write_png
from facelab.xseg.data import FaceSource, find_faces, load_face, make_sample
from facelab.xseg.net import XSegNet, build_net
from facelab.xseg.options import MODEL_NAME, XSEG_OPTIONS, xseg_options
from facelab.xseg.segmenter import predict_masks, saved_options

log = logging.getLogger(__name__)
PREVIEW_FACES = 4


@dataclass(frozen=True)
class XSegReport:
    """After each iteration: the iteration reached, its loss and batch IoU."""

    iteration: int
    loss: float
    iou: float


@dataclass(frozen=True)
class XSegResult:
    iteration: int
    start_iteration: int
    generic: bool
    faces: int
    seconds: float
    stopped_by: str
    options: dict[str, Any]


def batch_loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(BCE + soft Dice, IoU at 0.5) of logits (N, 1, R, R) against a target (N, 1, R, R) in [0, 1]."""
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum((1, 2, 3)) + 1) / (prob.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    loss = F.binary_cross_entropy_with_logits(logits, target) + dice.mean()
    with torch.no_grad():
        p, t = prob > 0.5, target > 0.5
        iou = ((p & t).sum() / (p | t).sum().clamp(min=1)).item()
    return loss, iou


def resume_options(files: ModelFiles, given: Mapping[str, Any]) -> dict[str, Any]:
    """A new model's options from ``given``; a saved one keeps its fixed (architecture) options, the others
    follow ``given`` where it says something."""
    if not files.exists():
        return xseg_options(given)
    saved = saved_options(files)
    for opt in XSEG_OPTIONS:
        value = given.get(opt.name)
        if value is None:
            continue
        if opt.fixed and opt.parse(value) != saved[opt.name]:
            log.warning("XSeg was made with %s %s; keeping it (architecture options are fixed)", opt.flag,
                        saved[opt.name])
        elif not opt.fixed:
            saved[opt.name] = opt.parse(value)
    return saved


def train_xseg(folder: Path, face_folders: list[Path], given: Mapping[str, Any], *, generic: bool | None = None,
               max_iterations: int | None = None, minutes: float | None = None, device: str = "cpu", seed: int = 0,
               on_iteration: Callable[[XSegReport], None] | None = None,
               progress: ProgressCallback = no_progress, clock: Callable[[], float] = time.monotonic) -> XSegResult:
    """Train (or resume) the XSeg in ``folder`` on the faces of ``face_folders`` until ``max_iterations`` (the
    iteration to reach, counting earlier runs), ``minutes`` of this run, a save-and-stop request from the UI
    or Ctrl-C; saves at the end and every ``save_minutes``. ``generic``: None = the generic start only when no
    face is labelled. ``clock`` (seconds) measures ``minutes``: wall time, or e.g. CPU time for a fixed budget."""
    folder = Path(folder)
    files = ModelFiles(folder, MODEL_NAME)
    options = resume_options(files, given)
    faces, use_generic = find_faces(face_folders, generic)
    dev = resolve_devices(device)[0]
    torch.manual_seed(seed)
    net = build_net(options).to(dev, memory_format=torch.channels_last)  # the samples' NHWC layout: faster on CPUs
    optimizer = torch.optim.Adam(net.parameters(), lr=options["learning_rate"])
    state, rng = TrainState(), np.random.default_rng(seed)
    if files.exists():
        checkpoint.load_weights(files, net, dev)
        state = checkpoint.load_state(files, optimizer)
        rng = _restore_rng(state, files)
    log.info("XSeg: %s start on %d faces at %d px, from iteration %d", "generic" if use_generic else "labelled",
             len(faces), options["resolution"], state.iteration)
    run = _Run(folder, files, net, optimizer, options, state, rng, faces, use_generic, dev)
    start_iteration, started = state.iteration, time.monotonic()
    stopped_by = run.loop(max_iterations, minutes, on_iteration, progress, clock)
    return XSegResult(state.iteration, start_iteration, use_generic, len(faces), time.monotonic() - started,
                      stopped_by, options)


class _Run:
    """One training run's loop, saves and previews (the state the helpers share)."""

    def __init__(self, folder: Path, files: ModelFiles, net: XSegNet, optimizer, options: dict[str, Any],
                 state: TrainState, rng: np.random.Generator, faces: list[FaceSource], generic: bool, device):
        self.folder, self.files, self.net, self.optimizer = folder, files, net, optimizer
        self.options, self.state, self.rng, self.faces, self.generic = options, state, rng, faces, generic
        self.device = device
        self.control = control.TrainerControl(folder, MODEL_NAME)
        self.saved_iteration = state.iteration if files.exists() else None
        self.save_seconds = options["save_minutes"] * 60

    def loop(self, max_iterations: int | None, minutes: float | None,
             on_iteration: Callable[[XSegReport], None] | None, progress: ProgressCallback,
             clock: Callable[[], float] = time.monotonic) -> str:
        started, last_save = clock(), time.monotonic()
        target = max_iterations
        stopped_by = "target iteration"
        try:
            while target is None or self.state.iteration < target:
                elapsed = clock() - started
                if minutes is not None and elapsed >= minutes * 60:
                    stopped_by = "minutes"
                    break
                # The iteration share counts from 0, like the target: a killed run resumed to it goes on exactly.
                share = schedule.run_share(self.state.iteration, target, elapsed, minutes and minutes * 60)
                self.set_rate(schedule.end_decay(share, self.options["lr_decay"]))
                t0 = time.perf_counter()
                report = self.step()
                self.control.iteration_done(self.state, (time.perf_counter() - t0) * 1000)
                if on_iteration is not None:
                    on_iteration(report)
                progress(Progress("xseg", self.state.iteration, target))
                asked = self.control.poll()
                if asked == "preview":
                    self.preview()
                elif asked in ("save", "save_and_stop") or time.monotonic() - last_save >= self.save_seconds:
                    self.save()
                    last_save = time.monotonic()
                    if asked == "save_and_stop":
                        stopped_by = "save and stop"
                        break
        except KeyboardInterrupt:
            stopped_by = "interrupted"
        if self.saved_iteration != self.state.iteration:
            self.save()
        self.control.write(self.state, running=False, stopped_by=stopped_by)
        return stopped_by

    def set_rate(self, factor: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.options["learning_rate"] * factor

    def step(self) -> XSegReport:
        r, n = self.options["resolution"], self.options["batch_size"]
        picks = self.rng.integers(len(self.faces), size=n)
        pairs = [make_sample(self.faces, int(i), r, self.rng, self.generic) for i in picks]
        images = torch.from_numpy(np.stack([p[0] for p in pairs])).to(self.device).permute(0, 3, 1, 2).float() / 255
        target = torch.from_numpy(np.stack([p[1] for p in pairs])).to(self.device)[:, None].float()
        self.net.train()
        loss, iou = batch_loss(self.net(images), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.state.iteration += 1
        self.state.loss_src.append(float(loss.item()))
        self.state.loss_dst.append(1.0 - iou)
        return XSegReport(self.state.iteration, float(loss.item()), iou)

    def save(self) -> None:
        self.state.sample_rng = self.rng.bit_generator.state
        self.state.torch_rng = torch.get_rng_state()
        checkpoint.save(self.files, self.net, self.optimizer, self.options, self.state)
        self.saved_iteration = self.state.iteration
        self.preview()
        self.control.saved(self.state)

    def preview(self) -> None:
        """MODEL_DIR/xseg/XSeg_preview.png: one row per face (PREVIEW_FACES spread over the set, not augmented):
        face | predicted mask | overlay (what is not face darkened and tinted red)."""
        r = self.options["resolution"]
        picks = np.linspace(0, len(self.faces) - 1, min(PREVIEW_FACES, len(self.faces))).round().astype(int)
        shown = [load_face(self.faces[i], r)[0] for i in picks]  # first to last: src and dst both
        write_png(control.preview_path(self.folder, MODEL_NAME),
                  preview_grid(np.stack(shown), predict_masks(self.net, np.stack(shown), self.device)))


def preview_grid(faces: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N·R, 3·R, 3) uint8 BGR: per face (N, R, R, 3) uint8 and mask (N, R, R) float [0, 1] a row
    face | mask | overlay."""
    rows = []
    for face, mask in zip(faces, masks):
        grey = cv2.cvtColor(np.rint(mask * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        tint = face.astype(np.float32) * 0.35 + np.array([0, 0, 120], np.float32)
        overlay = face * mask[..., None] + tint * (1 - mask[..., None])
        rows.append(np.hstack([face, grey, np.clip(overlay, 0, 255).astype(np.uint8)]))
    return np.vstack(rows)


def _restore_rng(state: TrainState, files: ModelFiles) -> np.random.Generator:
    """The sample generator as saved (so a resumed run draws what an unbroken one would)."""
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = state.sample_rng
    except (TypeError, ValueError, KeyError) as err:
        raise ModelError(f"the saved sample generator state is corrupt ({err})", path=files.optimizer_json,
                         fix="train a new XSeg in an empty folder") from None
    if state.torch_rng is not None:
        torch.set_rng_state(state.torch_rng)
    return rng
