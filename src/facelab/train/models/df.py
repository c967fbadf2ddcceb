"""DF: full face at 128 px; one shared encoder and one decoder per person (keeps the src likeness)."""

from __future__ import annotations

from typing import Any

from facelab.train.models import MODELS
from facelab.train.models.base import LIGHTWEIGHT_OPTION, SwapModel, classic_spec
from facelab.types import FaceType


@MODELS.register("DF")
class DF(SwapModel):
    """DF layout with residual blocks in the decoders, 512-wide dense code on an 8×8 grid."""

    option_specs = (LIGHTWEIGHT_OPTION,)
    face_type = FaceType.FULL.value

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        self.build("df", classic_spec(128, 512, 512, lightweight=options["lightweight"], residual=True))
