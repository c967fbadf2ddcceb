"""Trainer options shared by every model, and the rules for options on a model that already exists.

Kept free of torch so the CLI can build its flags without importing it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from facelab.errors import OptionError
from facelab.options import Option, validate

COMMON_OPTIONS: tuple[Option, ...] = (
    Option("batch_size", 8, "Faces per side in one training step. Bigger trains smoother but needs more memory.",
           min=1, max=512),
    Option("target_iteration", 0, "Stop when the model reaches this iteration (0: train until stopped).", min=0),
    Option("learning_rate", 5e-5, "Adam learning rate (the seed's 5e-5; up to ~2e-4 trains faster but less stably).",
           min=1e-6, max=1e-2),
    Option("save_minutes", 15.0, "Save the model, the preview and the loss graph every this many minutes.",
           min=0.0, max=600.0),
    Option("autobackup_hours", 0, "Copy the saved model to model/autobackups every N hours (0: off; last 5 kept).",
           min=0, max=24),
    Option("write_preview_history", False, "Also keep every preview in MODEL_DIR/preview_history/ (to watch progress)."),
    Option("preview_face", 0, "Index (by file name) of the first src and dst face shown in the previews.", min=0),
    Option("sort_by_yaw", False, "Feed src faces whose head yaw matches the dst face of the same batch slot."),
    Option("random_flip", True, "Randomly mirror faces (more poses; off when the face is clearly asymmetric)."),
    Option("src_scale_mod", 0, "Scale src faces by this percent while training (-30 to 30) to match dst face size.",
           min=-30, max=30),
    Option("optimizer_mode", 1, "1: all on the GPU. 2: Adam state in CPU RAM (bigger nets fit). "
           "3: like 2 plus activation checkpointing (slower, least GPU memory).", choices=(1, 2, 3),
           prompt="Optimizer mode"),
    Option("workers", -1, "Processes preparing training samples (-1: one per CPU core, up to 4; 0: in-process).",
           min=-1, max=64),
)

# Options that describe one run rather than the model: given as flags (or by a caller's ``run_options``) they
# apply to that run only, so a one-off `--target-iteration 100` does not stop every later run at once. They are
# saved with the model only when chosen as its options (at the prompts).
RUN_OPTIONS: tuple[str, ...] = ("target_iteration", "save_minutes", "workers")


def split_run_flags(given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``given`` without the run options, the run options given): None values count as not given."""
    run = {k: v for k, v in given.items() if k in RUN_OPTIONS and v is not None}
    return {k: v for k, v in given.items() if k not in run}, run


def model_option_specs(model_specs: Iterable[Option]) -> tuple[Option, ...]:
    """Common trainer options followed by the model's own; a model's declaration wins over a common one."""
    model_specs = tuple(model_specs)
    own = {o.name for o in model_specs}
    return tuple(o for o in COMMON_OPTIONS if o.name not in own) + model_specs


def with_defaults(specs: Iterable[Option], values: Mapping[str, Any]) -> tuple[Option, ...]:
    """The same options with ``values`` as their defaults (so prompts on resume show the saved value)."""
    return tuple(dataclasses.replace(o, default=values[o.name]) if o.name in values else o for o in specs)


def resume_options(specs: Iterable[Option], saved: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Options of an existing model: ``saved`` updated with ``given`` (None = not given).

    Architecture (fixed) options cannot change: a differing given value raises OptionError naming it.
    Options the saved file lacks (added in a later facelab version) take their defaults.
    """
    specs = tuple(specs)
    out = validate(specs, saved)
    for o in specs:
        value = given.get(o.name)
        if value is None:
            continue
        value = o.parse(value)
        if o.fixed and value != out[o.name]:
            raise OptionError(
                f"architecture option {o.flag} is fixed once the model exists (saved: {out[o.name]}, given: {value})",
                fix="leave it out, or start a new model in another --model-dir")
        out[o.name] = value
    return out


def with_run_options(specs: Iterable[Option], options: Mapping[str, Any], run_options: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """``options`` with this run's ``run_options`` (names from RUN_OPTIONS only, each checked by its Option)."""
    other = sorted(set(run_options) - set(RUN_OPTIONS))
    if other:
        raise OptionError(f"{other[0]} is not a run option", fix=f"run options are {', '.join(RUN_OPTIONS)}; "
                          "give the others as the model's options")
    return resume_options(specs, options, run_options)

