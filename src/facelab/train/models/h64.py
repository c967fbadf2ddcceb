"""H64: half face at 64 px with a learned mask — the seed's smallest model, for GPUs with little memory."""

from __future__ import annotations

from typing import Any

from facelab.train.models import MODELS
from facelab.train.models.base import LIGHTWEIGHT_OPTION, SwapModel, classic_spec
from facelab.types import FaceType


@MODELS.register("H64")
class H64(SwapModel):
    """DF layout (shared encoder, one decoder per person), 1024-wide dense code on a 4×4 grid."""

    option_specs = (LIGHTWEIGHT_OPTION,)
    face_type = FaceType.HALF.value

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        self.build("df", classic_spec(64, 1024, 512, lightweight=options["lightweight"], residual=False))
