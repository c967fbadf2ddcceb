"""SAE: the seed's configurable model — resolution, face type, DF or LIAE layout, widths, loss switches."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from facelab.options import Option
from facelab.train.models import MODELS
from facelab.train.models.base import SwapModel, check_multiple
from facelab.train.models.nets import NetSpec
from facelab.train.samples import FeedSettings
from facelab.types import FACE_TYPE_LETTERS, FaceType

RESOLUTION = Option("resolution", 128, "Face size in pixels (multiple of 16). Bigger is sharper and much slower.",
                    min=64, max=256, prompt="Resolution", fixed=True)

OPTIONS: tuple[Option, ...] = (
    RESOLUTION,
    Option("face_type", FaceType.FULL.value, "half: eyebrows to chin; full: the whole face to the forehead.",
           choices=(FaceType.HALF.value, FaceType.FULL.value), prompt="Face type", fixed=True,
           aliases=FACE_TYPE_LETTERS),
    Option("learn_mask", True, "Learn the face mask too (merge can then use it); costs ~10 % more time.",
           prompt="Learn mask", fixed=True),
    Option("archi", "df", "df: one decoder per person, keeps src likeness; liae: one decoder, morphs src "
           "toward dst's look, blends in better.", choices=("df", "liae"), prompt="AE architecture", fixed=True),
    Option("ae_dims", 512, "Width of the dense code (the autoencoder's bottleneck). More holds more detail.",
           min=128, max=1024, prompt="AutoEncoder dims", fixed=True),
    Option("e_ch_dims", 42, "Encoder width per colour channel: the first encoder layer has 3x this many channels.",
           min=21, max=85, prompt="Encoder dims per channel", fixed=True),
    Option("d_ch_dims", 21, "Decoder width per colour channel: the last decoder layer has 6x this many channels.",
           min=11, max=85, prompt="Decoder dims per channel", fixed=True),
    Option("mask_dims", 22, "Mask decoder width: its last layer has 2x this many channels.",
           min=16, max=256, prompt="Mask decoder dims", fixed=True),
    Option("multiscale_decoder", False, "Also decode and learn the face at 1/4 and 1/2 resolution.",
           prompt="Multiscale decoder", fixed=True),
    Option("ca_init", False, "Convolution-aware weight initialisation (trains faster at first; slower to create).",
           prompt="Use CA weights", fixed=True),
    Option("remove_gray_border", False, "Leave the outer 1/16 of the face out of the loss (where warping pulls in "
           "gray border).", prompt="Remove gray border"),
    Option("pixel_loss", False, "Pixel MSE instead of DSSIM + MSE: truer colours, blurrier detail.",
           prompt="Use pixel loss"),
    Option("face_style_power", 0.0, "Pull the swapped face's colours and contrast toward dst's (0-100; try 10).",
           min=0.0, max=100.0, prompt="Face style power"),
    Option("bg_style_power", 0.0, "Learn the dst background around the swapped face (0-100; try 10).",
           min=0.0, max=100.0, prompt="Background style power"),
    Option("pretrain_faceset", "", "Folder of aligned faces to pretrain on before src and dst ('' = no pretraining).",
           type=str, prompt="Pretrain faceset"),
    Option("random_warp", True, "Randomly warp the input faces (what makes the swap generalise); turn off late to "
           "sharpen.", prompt="Enable random warp of samples"),
)


@MODELS.register("SAE")
class SAE(SwapModel):
    """DF or LIAE layout with residual decoders and a separate mask decoder.

    Widths (like the seed): encoder 3·e, 6·e, 12·e, 24·e channels for e = e_ch_dims; decoder 24·d, 12·d, 6·d for
    d = d_ch_dims; mask decoder 8·m, 4·m, 2·m for m = mask_dims. The dense code is ae_dims wide on a
    (R/16)² grid; LIAE's two codes are 2·ae_dims channels each.
    """

    option_specs = OPTIONS

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        check_multiple(RESOLUTION, options["resolution"], 16)
        self.face_type = options["face_type"]
        self.pixel_loss = options["pixel_loss"]
        self.face_style_power = float(options["face_style_power"])
        self.bg_style_power = float(options["bg_style_power"])
        self.remove_gray_border = options["remove_gray_border"]
        e, d, m = 3 * options["e_ch_dims"], 3 * options["d_ch_dims"], options["mask_dims"]
        liae = options["archi"] == "liae"
        spec = NetSpec(
            resolution=options["resolution"], enc_widths=(e, 2 * e, 4 * e, 8 * e), ae_dims=options["ae_dims"],
            code_ch=options["ae_dims"] * (2 if liae else 1), dec_widths=(8 * d, 4 * d, 2 * d),
            mask="decoder" if options["learn_mask"] else "none", mask_widths=(8 * m, 4 * m, 2 * m),
            residual=True, multiscale=options["multiscale_decoder"], out_kernel=1)
        self.build(options["archi"], spec, ca_init=options["ca_init"])

    def feed_settings(self, opts: Mapping[str, Any]) -> FeedSettings:
        return dataclasses.replace(super().feed_settings(opts), random_warp=self.options["random_warp"])
