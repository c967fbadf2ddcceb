"""LIAEF128: full face at 128 px; one encoder, intermediate codes AB and B, one decoder (morphs src toward dst)."""

from __future__ import annotations

from typing import Any

from facelab.train.models import MODELS
from facelab.train.models.base import LIGHTWEIGHT_OPTION, SwapModel, classic_spec
from facelab.types import FaceType


@MODELS.register("LIAEF128")
class LIAEF128(SwapModel):
    """LIAE layout (see ``nets.LIAENet``): two 256-wide codes on an 8×8 grid, decoder with residual blocks."""

    option_specs = (LIGHTWEIGHT_OPTION,)
    face_type = FaceType.FULL.value

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        self.build("liae", classic_spec(128, 256, 256, lightweight=options["lightweight"], residual=True))
