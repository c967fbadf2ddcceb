"""H128: half face at 128 px with a learned mask — more detail than H64 for the same face region."""

from __future__ import annotations

from typing import Any

from facelab.train.models import MODELS
from facelab.train.models.base import LIGHTWEIGHT_OPTION, SwapModel, classic_spec
from facelab.types import FaceType


@MODELS.register("H128")
class H128(SwapModel):
    """DF layout (shared encoder, one decoder per person), 512-wide dense code on an 8×8 grid."""

    option_specs = (LIGHTWEIGHT_OPTION,)
    face_type = FaceType.HALF.value

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        self.build("df", classic_spec(128, 512, 512, lightweight=options["lightweight"], residual=False))
