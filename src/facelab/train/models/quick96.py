"""Quick96: DeepFaceLab 2's fixed fast model — SAEHD at 96 px, full face, df-ud 128/64/64/16, RMSprop with
learning-rate dropout. Nothing to choose but the trainer's options: the model a CPU user should start with."""

from __future__ import annotations

from facelab.options import Option, defaults
from facelab.train.models import MODELS
from facelab.train.models.saehd import OPTIONS as SAEHD_OPTIONS
from facelab.train.models.saehd import SAEHD
from facelab.types import FaceType

QUICK96 = {**defaults(SAEHD_OPTIONS), "resolution": 96, "face_type": FaceType.FULL.value, "archi": "df-ud",
           "ae_dims": 128, "e_dims": 64, "d_dims": 64, "mask_dims": 16, "random_src_flip": True,
           "lr_dropout": "y", "optimizer": "rmsprop"}


@MODELS.register("Quick96")
class Quick96(SAEHD):
    """SAEHD with ``QUICK96``'s settings; only its learning rate differs from the trainer's default (RMSprop's)."""

    option_specs = (Option("learning_rate", 2e-4, "RMSprop learning rate (Quick96's 2e-4).", min=1e-6, max=1e-2),)
    fixed_settings = QUICK96
