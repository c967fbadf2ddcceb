"""The seed's first models — H64, H128, DF, LIAEF128 — as variants of one builder (timm-style ``model_args``).

They share everything but a few numbers: the autoencoder (encoder 128-1024 channels, decoder 512-128, the mask
as a fourth decoder output), one ``lightweight`` option that halves every width, and no other option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facelab.options import Option
from facelab.train.models import MODELS
from facelab.train.models.base import SwapModel
from facelab.train.models.nets import NetSpec
from facelab.types import FaceType

LIGHTWEIGHT_OPTION = Option(
    "lightweight", False, "Lightweight autoencoder: half the channels (about a quarter of the memory and work), "
    "for GPUs with 2-4 GB.", prompt="Lightweight autoencoder", fixed=True)


@dataclass(frozen=True)
class ClassicArgs:
    """What one classic variant fixes: face size and type, layout ("df" or "liae"), the dense code's width
    ``ae_dims`` and its channels per grid cell ``code_ch``, and residual blocks in the decoder."""

    resolution: int
    face_type: str
    layout: str
    ae_dims: int
    code_ch: int
    residual: bool


def classic_spec(args: ClassicArgs, *, lightweight: bool) -> NetSpec:
    """The autoencoder of ``args``; ``lightweight`` halves every width."""
    div = 2 if lightweight else 1
    return NetSpec(resolution=args.resolution, enc_widths=tuple(c // div for c in (128, 256, 512, 1024)),
                   ae_dims=args.ae_dims // div, code_ch=args.code_ch // div,
                   dec_widths=tuple(c // div for c in (512, 256, 128)), mask="head", residual=args.residual)


class ClassicModel(SwapModel):
    """A classic variant: ``model_args`` says which (set by ``_register``)."""

    option_specs = (LIGHTWEIGHT_OPTION,)
    model_args: ClassicArgs

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        self.build(self.model_args.layout, classic_spec(self.model_args, lightweight=options["lightweight"]))


def _register(name: str, doc: str, **model_args: Any) -> type[ClassicModel]:
    """Register variant ``name``: a ClassicModel subclass fixed to ``model_args``."""
    args = ClassicArgs(**model_args)
    cls = type(name, (ClassicModel,), {"model_args": args, "face_type": args.face_type, "__doc__": doc,
                                       "__module__": __name__, "__qualname__": name})
    return MODELS.register(name)(cls)


_HALF, _FULL = FaceType.HALF.value, FaceType.FULL.value

H64 = _register("H64", "Half face at 64 px, DF layout, 1024-wide code on a 4×4 grid: the seed's smallest model.",
                resolution=64, face_type=_HALF, layout="df", ae_dims=1024, code_ch=512, residual=False)
H128 = _register("H128", "Half face at 128 px, DF layout, 512-wide code on an 8×8 grid: more detail than H64.",
                 resolution=128, face_type=_HALF, layout="df", ae_dims=512, code_ch=512, residual=False)
DF = _register("DF", "Full face at 128 px, DF layout with residual decoders: one decoder per person keeps the "
               "src likeness.", resolution=128, face_type=_FULL, layout="df", ae_dims=512, code_ch=512, residual=True)
LIAEF128 = _register("LIAEF128", "Full face at 128 px, LIAE layout (see nets.LIAENet): two 256-wide codes, one "
                     "residual decoder; morphs src toward dst's look.",
                     resolution=128, face_type=_FULL, layout="liae", ae_dims=256, code_ch=256, residual=True)
