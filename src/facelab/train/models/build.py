"""A model from its name and options: every option of a run, the saved options of an existing model, the model.

Training and merging (``train/swap.py``) both build models here, so merging never imports the training loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from facelab.options import Option, validate
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.train.models import MODELS
from facelab.train.options import model_option_specs, resume_options
from facelab.train.precision import AMP_OPTION


def build_model(model_name: str, options: dict[str, Any]) -> nn.Module:
    """A new model of ``model_name`` from the (validated) options; only the model's own keys are passed on."""
    cls = MODELS.get(model_name)
    return cls({o.name: options[o.name] for o in cls.option_specs})


def option_specs(model_name: str) -> tuple[Option, ...]:
    """Every option of a training run of ``model_name``: common trainer options, mixed precision, the model's."""
    own = MODELS.get(model_name).option_specs
    return model_option_specs(own if any(o.name == AMP_OPTION.name for o in own) else (AMP_OPTION, *own))


def model_options(model_dir: Path, saved_name: str, given: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(validated options, whether the model exists): saved options updated by ``given`` for an existing model
    (fixed ones must match), else ``given`` validated against the model's options. ``saved_name``: the name its
    files carry (``checkpoint.saved_name``: the model's name, maybe with a GPU index prefix)."""
    specs = option_specs(checkpoint.parse_saved_name(saved_name)[0])
    files = ModelFiles(Path(model_dir), saved_name)
    if files.exists():
        return resume_options(specs, checkpoint.load_options(files), given), True
    return validate(specs, given), False
