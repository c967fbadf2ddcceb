"""Training a model: create or resume it, load the faces, set up its optimizers, run the loop, clean up.

Saves happen every ``save_minutes``, when stopped (target iteration, time or iteration limit, Ctrl-C, SIGTERM,
the caller's ``should_stop``) and never leave a half-written model (see ``checkpoint``). A NaN/inf loss rolls
the model back to its last save. Several GPUs: start with ``torchrun --nproc-per-node N`` — each process trains
on its own GPU with DDP (``ddp.py``), rank 0 saves. The loop itself is ``loop.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from facelab.progress import ProgressCallback, no_progress
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles, TrainState
from facelab.train.ddp import Distributed
from facelab.train.heap import reuse_freed_memory
from facelab.train.loop import AUTOENCODER, IterationReport, TrainLoop, stop_signals
from facelab.train.models.base import SwapModel
from facelab.train.models.build import build_model, model_options, option_specs
from facelab.train.optim import OptimizerSet, make_optimizer
from facelab.train.options import with_run_options
from facelab.train.precision import preferred_memory_format
from facelab.train.samples import FaceCache, SampleFeeder, default_workers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    iteration: int
    loss_src: float
    loss_dst: float
    stopped_by: str  # "target", "iterations", "time", "signal", "user"
    model_dir: Path


def train_model(model_dir: Path, src_aligned: Path, dst_aligned: Path, model_name: str, options: dict,
                *, run_options: Mapping[str, Any] | None = None, max_iterations: int | None = None,
                max_seconds: float | None = None, device: str = "auto", progress: ProgressCallback = no_progress,
                pretrain_faceset: Path | None = None, on_iteration: Callable[[IterationReport], None] | None = None,
                should_stop: Callable[[], bool] | None = None, seed: int | None = None,
                gpu_index: int | None = None) -> TrainResult:
    """Create (or resume) ``model_name`` in ``model_dir`` and train it on the two aligned folders.

    ``options`` are saved with the model (for an existing one: changes to its saved options). ``run_options``
    (``options.RUN_OPTIONS``: target_iteration, save_minutes, workers) apply to this run only and are not saved.
    ``pretrain_faceset``: train both sides on this one faceset instead; the iteration count restarts when
    real training follows. ``seed`` fixes weights init and sampling (with ``workers`` 0, also across resumes).
    ``gpu_index``: the GPU the user picked by index (``device.chosen_gpu_index``); the model's files then carry it
    as a prefix (``checkpoint.saved_name``), so one folder holds a model per GPU.
    """
    model_dir = Path(model_dir)
    files = ModelFiles(model_dir, checkpoint.saved_name(model_name, gpu_index))
    saved, exists = model_options(model_dir, files.name, options)
    opts = with_run_options(option_specs(model_name), saved, run_options or {})
    # SAE saves its pretrain faceset as an option (the seed's way); other models take it per run.
    pretrain_faceset = pretrain_faceset or opts.get("pretrain_faceset") or None
    dist = Distributed.start(device)
    if seed is not None:
        torch.manual_seed(seed + dist.rank)
    model = build_model(model_name, opts).to(dist.device)
    if opts["optimizer_mode"] == 3:
        model.use_checkpointing = True
    model = model.to(memory_format=preferred_memory_format(dist.device, opts["amp"]))
    optimizers = make_optimizers(model, opts, dist.device)
    state = TrainState(pretrained=pretrain_faceset is not None)
    if exists:
        state = _resume(files, model, optimizers, opts, dist.device, pretrain_faceset is not None)
    workers = default_workers() if opts["workers"] < 0 else opts["workers"]
    caches: tuple[FaceCache, ...] = ()
    feeder = None
    try:
        settings = model.feed_settings(opts)
        caches = _load_faces(pretrain_faceset, src_aligned, dst_aligned, model, progress, settings.eyes_mouth)
        feeder = SampleFeeder(caches[0], caches[1], settings, workers=workers,
                              seed=(seed or 0) + dist.rank * 7919)
        if exists and state.torch_rng is not None:
            torch.set_rng_state(state.torch_rng)
        if exists and state.sample_rng is not None and workers == 0:
            feeder.rng_state = state.sample_rng
        loop = TrainLoop(model, optimizers, feeder, files, opts, state, dist, caches, on_iteration, saved)
        if not exists and dist.is_main:
            loop.save(event=False)
        dist.barrier()
        with stop_signals() as signalled, reuse_freed_memory(dist.device.type == "cpu"):
            def stop_requested() -> str | None:
                return "signal" if signalled.is_set() else "user" if should_stop and should_stop() else None

            stopped_by = loop.run(max_iterations, max_seconds, stop_requested)
    finally:
        if feeder is not None:
            feeder.close()
        for cache in {id(c): c for c in caches}.values():
            cache.close()
        dist.close()
    return TrainResult(loop.state.iteration, loop.last_src, loop.last_dst, stopped_by, model_dir)


def make_optimizers(model: SwapModel, opts: Mapping[str, Any], device: torch.device) -> OptimizerSet:
    """The autoencoder's optimizer (``AUTOENCODER``), then one per extra part in the model's order, all of
    ``optimizer_mode``."""
    mode = opts["optimizer_mode"]
    named = {AUTOENCODER: make_optimizer(model.param_groups(), opts["learning_rate"], device, mode,
                                         model.optimizer_factory(AUTOENCODER))}
    for name, part in model.extra_parts().items():
        params = [p for p in part.module.parameters() if p.requires_grad]
        named[name] = make_optimizer([{"params": params}], _part_rate(part, opts), device, mode,
                                     model.optimizer_factory(name))
    return OptimizerSet(named)


def _part_rate(part, opts: Mapping[str, Any]) -> float:
    return opts["learning_rate"] if part.learning_rate is None else part.learning_rate


def _resume(files: ModelFiles, model: SwapModel, optimizers: OptimizerSet, opts: Mapping[str, Any],
            device: torch.device, pretraining: bool) -> TrainState:
    """Load weights, optimizer states and history into the new model; the learning rates are this run's."""
    checkpoint.load_weights(files, model, device)
    state = checkpoint.load_state(files, optimizers)
    parts = model.extra_parts()
    for name in optimizers:
        rate = opts["learning_rate"] if name == AUTOENCODER else _part_rate(parts[name], opts)
        for group in optimizers[name].param_groups:
            group["lr"] = rate
    if state.pretrained and not pretraining:
        log.warning("%s was pretrained: its iteration count restarts for real training", files.name)
        state = TrainState()
    state.pretrained = state.pretrained or pretraining
    return state


def _load_faces(pretrain: Path | None, src: Path, dst: Path, model, progress,
                eyes_mouth: bool) -> tuple[FaceCache, FaceCache]:
    ft, res = str(getattr(model.face_type, "value", model.face_type)), model.resolution
    if pretrain is not None:
        cache = FaceCache.build(Path(pretrain), ft, res, progress, "Loading pretrain faces", eyes_mouth=eyes_mouth)
        return cache, cache
    src_cache = FaceCache.build(Path(src), ft, res, progress, "Loading src faces", eyes_mouth=eyes_mouth)
    try:
        return src_cache, FaceCache.build(Path(dst), ft, res, progress, "Loading dst faces", eyes_mouth=eyes_mouth)
    except BaseException:
        src_cache.close()
        raise

