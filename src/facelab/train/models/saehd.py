"""SAEHD: DeepFaceLab 2's flagship model — configurable resolution, face type, DF/LIAE with the u/d/t variants,
eyes-and-mouth priority, a patch GAN and a true-face code discriminator.

Written from the description of the method (DeepFaceLab 2, Perov et al. 2020) and its published options; the
networks are in ``saehd_nets``, the discriminators in ``facelab.train.discriminators``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from facelab.errors import OptionError
from facelab.geometry.colour import COLOUR_TRANSFERS
from facelab.options import Option
from facelab.train import losses
from facelab.train.blocks import init_weights
from facelab.train.discriminators import CodeDiscriminator, PatchDiscriminator, bce, discriminator_loss
from facelab.train.models import MODELS
from facelab.train.models import sae
from facelab.train.models.base import ExtraPart, SwapModel, check_multiple
from facelab.train.models.saehd_nets import ARCHI_CHOICES, SAEHDSpec, build_net, init_subpixel_convs, parse_archi
from facelab.train.optim import OptimizerFactory
from facelab.train.optimizers import OPTIMIZERS, lr_dropout_settings
from facelab.train.samples import FeedSettings
from facelab.types import FACE_TYPE_LETTERS, FaceType

_SAE = {o.name: o for o in sae.OPTIONS}

RESOLUTION = Option("resolution", 128, "Face size in pixels: a multiple of 16 (of 32 with the -d archi variant). "
                    "Bigger is sharper and much slower.", min=64, max=640, prompt="Resolution", fixed=True)
ARCHI = Option("archi", "liae-ud", "df: one decoder per person, keeps src likeness; liae: one shared decoder, "
               "morphs src toward dst's look and light. Variants: -u pixel-normalised code (steadier), -d double "
               "resolution at the same cost, -t deeper nets (closer likeness, slower); combine them, e.g. liae-udt.",
               choices=ARCHI_CHOICES, prompt="AE architecture", fixed=True)
GAN_POWER = Option("gan_power", 0.0, "Train a patch discriminator that sharpens detail (0 off - 5). Turn it on late, "
                   "once the faces are sharp in the preview; 0.1 is a good start.", min=0.0, max=5.0,
                   prompt="GAN power")
TRUE_FACE_POWER = Option("true_face_power", 0.0, "Code discriminator that pulls the swap toward src identity "
                         "(0 off - 1; try 0.01; df archi only).", min=0.0, max=1.0, prompt="'True face' power")

OPTIONS: tuple[Option, ...] = (
    RESOLUTION,
    Option("face_type", FaceType.FULL.value, "How much of the head the model sees: half (brows to chin), mid-full, "
           "full, whole-face (to the forehead) or head (hair too; needs head-extracted faces).",
           choices=tuple(t.value for t in FaceType), prompt="Face type", fixed=True,
           aliases=FACE_TYPE_LETTERS),
    ARCHI,
    Option("ae_dims", 256, "Width of the dense code. More holds more detail and identity.", min=32, max=1024,
           prompt="AutoEncoder dimensions", fixed=True),
    Option("e_dims", 64, "Encoder width (channels of its first layer). More recognises more face detail.",
           min=16, max=256, prompt="Encoder dimensions", fixed=True),
    Option("d_dims", 64, "Decoder width (its last stage has twice this many channels). More draws more detail.",
           min=16, max=256, prompt="Decoder dimensions", fixed=True),
    Option("mask_dims", 22, "Mask decoder width; the learned mask needs far less than the face.", min=16, max=256,
           prompt="Decoder mask dimensions", fixed=True),
    Option("masked_training", True, "Learn the face inside the mask only (the background then costs nothing). "
           "Turn off for a while with whole-face/head to learn the hair and the forehead.", prompt="Masked training"),
    Option("eyes_mouth_prio", False, "Weigh the loss heavier on the eyes and the mouth (from the landmarks): sharper "
           "eyes, teeth and gaze.", prompt="Eyes and mouth priority"),
    Option("uniform_yaw", False, "Draw faces evenly over head turn, so rare side views train as often as frontal "
           "ones.", prompt="Uniform yaw distribution of samples"),
    Option("blur_out_mask", False, "Blur the background of the training targets around the mask, so the model "
           "spends nothing on background detail.", prompt="Blur out mask"),
    _SAE["random_warp"],
    Option("random_hsv_power", 0.0, "Randomly shift the hue, saturation and value of src faces by up to this much "
           "(0-0.3; try 0.05): stabilises the swap's colours.", min=0.0, max=0.3, prompt="Random hue/saturation/light"
           " intensity"),
    Option("random_flip", True, "Randomly mirror dst faces (more poses to learn from).", prompt="Flip DST faces "
           "randomly"),
    Option("random_src_flip", False, "Randomly mirror src faces: more src poses, but a lopsided face (a parting, a "
           "mole) loses its side.", prompt="Flip SRC faces randomly"),
    Option("lr_dropout", "n", "Learning-rate dropout: y drops 70 % of the weight updates each step (sharper late "
           "training, use after random warp is off); cpu: the same with its masks made on the CPU.",
           choices=("n", "y", "cpu"), prompt="Use learning rate dropout"),
    Option("clipgrad", False, "Clip the gradient norm to 1: fewer model collapses (costs a little speed).",
           prompt="Enable gradient clipping"),
    Option("adabelief", True, "AdaBelief optimizer (trains faster and steadier than Adam); off: Adam.",
           prompt="Use AdaBelief optimizer"),
    GAN_POWER,
    Option("gan_patch_size", 16, "Side in pixels of the squares the GAN judges (3-640; about resolution / 8). "
           "Bigger judges larger structures.", min=3, max=640, prompt="GAN patch size", fixed=True),
    Option("gan_dims", 16, "Width of the GAN discriminator (4-512).", min=4, max=512, prompt="GAN dimensions",
           fixed=True),
    TRUE_FACE_POWER,
    _SAE["face_style_power"],
    _SAE["bg_style_power"],
    Option("ct_mode", "none", "Colour transfer of src training faces toward random dst faces, so the swap learns "
           "dst's colours: " + ", ".join(COLOUR_TRANSFERS.names()) + ".", choices=tuple(COLOUR_TRANSFERS.names()),
           prompt="Color transfer for src faceset"),
    _SAE["pretrain_faceset"],
)

# Loss weights, on the scale of SAE's 10·DSSIM + 10·MSE.
EYES_MOUTH_WEIGHT = 300.0  # on a mean over the whole face, where eyes and mouth are a few % of the pixels
MASK_WEIGHT = 10.0
GAN_BACKGROUND_WEIGHT = 0.02  # with a GAN and masked training: keep the unjudged background roughly right
CLIP_NORM = 1.0  # "clip gradients": the global gradient norm of each optimizer's parameters is kept below this
TWO_SCALE_FROM = 256  # from this resolution on, DSSIM is taken at two window sizes


def blur_out_background(image: Tensor, mask: Tensor, sigma: float) -> Tensor:
    """``image`` (N, 3, R, R) with the pixels outside ``mask`` (N, 1, R, R) replaced by a blur of the background
    alone: blur(image·(1−m)) / blur(1−m), a normalised convolution that never bleeds the face outward."""
    anti = 1 - mask
    weight = losses.gaussian_blur(anti, sigma)
    background = losses.gaussian_blur(image * anti, sigma) / weight.clamp_min(1e-6)
    background = torch.where(weight > 1e-6, background, image)
    return image * mask + background * anti


def reconstruction_loss(pred: Tensor, target: Tensor, resolution: int) -> Tensor:
    """SAEHD's image loss of two (N, 3, R, R) images (already masked): 10·DSSIM (window ~R/11.6; below
    TWO_SCALE_FROM px, else 5·DSSIM at R/11.6 and 5·DSSIM at R/23.2) + 10·MSE."""
    if resolution < TWO_SCALE_FROM:
        structure = 10 * losses.dssim(pred, target, size=losses.dssim_window(resolution))
    else:
        structure = 5 * (losses.dssim(pred, target, size=losses.dssim_window(resolution))
                         + losses.dssim(pred, target, size=losses.dssim_window(resolution // 2)))
    return structure + 10 * losses.mse(pred, target)


@MODELS.register("SAEHD")
class SAEHD(SwapModel):
    """DF or LIAE autoencoder of ``saehd_nets`` with a learned mask, plus two discriminators trained beside it
    (``extra_parts``: "gan", the patch discriminator; "true_face", the code discriminator, df only).

    The discriminators are always built (they are small), so their weights are in every saved model whatever
    the powers were when it was created.
    """

    option_specs = OPTIONS
    fixed_settings: dict[str, Any] = {}

    def __init__(self, options: dict[str, Any]):
        super().__init__(options)
        o = {**options, **self.fixed_settings}
        layout, letters = parse_archi(o["archi"])
        check_multiple(RESOLUTION, o["resolution"], 32 if "d" in letters else 16)
        if o["true_face_power"] > 0 and layout != "df":
            raise OptionError(f"{TRUE_FACE_POWER.flag} works with the df archi only (this model is {o['archi']})",
                              fix=f"leave {TRUE_FACE_POWER.flag} at 0, or start a df model")
        self.o = o
        self.face_type, self.resolution, self.learn_mask = o["face_type"], o["resolution"], True
        self.face_style_power, self.bg_style_power = float(o["face_style_power"]), float(o["bg_style_power"])
        self.pretraining = bool(o.get("pretrain_faceset"))
        self.spec = SAEHDSpec(o["resolution"], o["archi"], o["ae_dims"], o["e_dims"], o["d_dims"], o["mask_dims"])
        self.net = build_net(self.spec)
        self.patch_d = PatchDiscriminator(o["gan_patch_size"], o["resolution"], o["gan_dims"])
        self.code_d = CodeDiscriminator(self.spec.code_ch, self.spec.inter_res) if layout == "df" else None
        init_weights(self)
        init_subpixel_convs(self.net)

    # -- what the trainer asks ------------------------------------------------------------------------------

    @property
    def gan_power(self) -> float:
        return 0.0 if self.pretraining else float(self.o["gan_power"])

    @property
    def true_face_power(self) -> float:
        return 0.0 if self.pretraining else float(self.o["true_face_power"])

    def feed_settings(self, opts: Mapping[str, Any]) -> FeedSettings:
        """How the samples for this model are drawn and augmented (``opts``: the run's options; pretraining draws
        evenly over yaw)."""
        o = self.o
        return FeedSettings(opts["batch_size"], random_flip=o["random_flip"], sort_by_yaw=opts["sort_by_yaw"],
                            src_scale_mod=opts["src_scale_mod"], src_flip=o["random_src_flip"],
                            random_warp=o["random_warp"], uniform_yaw=o["uniform_yaw"] or self.pretraining,
                            hsv_power=o["random_hsv_power"], colour_transfer=o["ct_mode"],
                            eyes_mouth=o["eyes_mouth_prio"])

    def optimizer_factory(self, part: str) -> OptimizerFactory:
        """AdaBelief, Adam or RMSprop (``optimizer_name``) with the model's LR dropout and gradient clipping, for the
        autoencoder and the discriminators alike."""
        keep, on_cpu = lr_dropout_settings(self.o["lr_dropout"])
        make = OPTIMIZERS.get(self.optimizer_name)
        clip = CLIP_NORM if self.o["clipgrad"] else 0.0
        return lambda groups, lr, device: make(groups, lr, keep, on_cpu, clip)

    @property
    def optimizer_name(self) -> str:
        """Registry name in ``facelab.train.optimizers.OPTIMIZERS`` of the autoencoder's optimizer."""
        return self.o.get("optimizer") or ("adabelief" if self.o["adabelief"] else "adam")

    def extra_parts(self) -> dict[str, ExtraPart]:
        """Both discriminators (the code one for df only), each with the loss it minimises, trained while their
        power is above 0; declared either way so a power can be switched on for a model that exists."""
        parts = {"gan": ExtraPart(self.patch_d, self.gan_discriminator_loss, active=self.gan_power > 0)}
        if self.code_d is not None:
            parts["true_face"] = ExtraPart(self.code_d, self.true_face_discriminator_loss,
                                           active=self.true_face_power > 0)
        return parts

    # -- forward and losses ---------------------------------------------------------------------------------

    def forward_train(self, src: Tensor, dst: Tensor, *, swap: bool = True) -> dict[str, Tensor]:
        """``SwapModel.forward_train``'s outputs (always with masks) plus the codes "src_code" and "dst_code"
        (N, C, r, r), which the true-face discriminator reads."""
        c_src, c_dst, c_swap = self.net.codes(src, dst)
        (src_images, src_mask), (dst_images, dst_mask) = self.net.decode_pair(c_src, c_dst)
        out = {"src_src": src_images[-1], "dst_dst": dst_images[-1], "src_src_mask": src_mask,
               "dst_dst_mask": dst_mask, "src_code": c_src, "dst_code": c_dst}
        needs_swap_grad = self.face_style_power > 0 or self.bg_style_power > 0
        if swap or needs_swap_grad:
            with torch.set_grad_enabled(needs_swap_grad and torch.is_grad_enabled()):
                swap_images, out["dst_src_mask"] = self.net.decode_swap(c_swap)
            out["dst_src"] = swap_images[-1]
        return out

    def _targets(self, batch: dict[str, Tensor], side: str) -> tuple[Tensor, Tensor, Tensor]:
        """(target, mask, loss weight) of one side, float32; the weight is 1 everywhere without masked training."""
        target, mask = batch[f"{side}_target"].float(), batch[f"{side}_mask"].float()
        if self.o["blur_out_mask"]:
            target = blur_out_background(target, mask, self.resolution / 128)
        weight = losses.loss_mask(mask, self.resolution) if self.o["masked_training"] else torch.ones_like(mask)
        return target, mask, weight

    def loss(self, batch: dict[str, Tensor], out: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scalar losses "src", "dst", "total" (backward on "total"), plus the terms "src_gan" and "src_true_face"
        when those are on (already inside "src"), computed in float32.

        Per side: ``reconstruction_loss`` inside the loss weight, 300·L1 on the eyes and mouth (with their
        priority), 10·MSE of the learned mask. The src side also carries the style losses (as SAE), the GAN's
        generator term (the patch discriminator should score the predicted src face real) and the true-face term
        (the code discriminator should take src codes for dst ones).
        """
        with torch.autocast(device_type=batch["src_target"].device.type, enabled=False):
            r, terms, weights, targets = self.resolution, {}, {}, {}
            for side in ("src", "dst"):
                targets[side], mask, weights[side] = self._targets(batch, side)
                pred, w, target = out[f"{side}_{side}"].float(), weights[side], targets[side]
                total = reconstruction_loss(pred * w, target * w, r)
                if self.o["eyes_mouth_prio"]:
                    em = batch[f"{side}_em_mask"].float()
                    total = total + EYES_MOUTH_WEIGHT * (pred * em - target * em).abs().mean()
                terms[side] = total + MASK_WEIGHT * losses.mse(out[f"{side}_{side}_mask"].float(), mask)
            terms["src"] = terms["src"] + self._style_terms(batch, out, weights["dst"])
            if self.gan_power > 0:
                target, w, pred = targets["src"], weights["src"], out["src_src"].float()
                terms["src_gan"] = self.gan_power * bce(self.patch_d(pred * w), True)
                if self.o["masked_training"]:
                    terms["src_gan"] = terms["src_gan"] + GAN_BACKGROUND_WEIGHT * losses.mse(pred * (1 - w),
                                                                                             target * (1 - w))
                terms["src"] = terms["src"] + terms["src_gan"]
            if self.true_face_power > 0:
                terms["src_true_face"] = self.true_face_power * bce(self.code_d(out["src_code"].float()), True)
                terms["src"] = terms["src"] + terms["src_true_face"]
        return {**terms, "total": terms["src"] + terms["dst"]}

    def _style_terms(self, batch: dict[str, Tensor], out: dict[str, Tensor], dst_weight: Tensor) -> Tensor | float:
        """Face style (colour statistics of the swap toward dst's) and background style (dst's background)."""
        total: Tensor | float = 0.0
        if self.face_style_power > 0:
            total = total + self.face_style_power * losses.style_loss(out["dst_src"].float(),
                                                                      batch["dst_target"].float(), dst_weight)
        if self.bg_style_power > 0:
            anti = 1 - dst_weight
            total = total + self.bg_style_power / 100 * reconstruction_loss(
                out["dst_src"].float() * anti, batch["dst_target"].float() * anti, self.resolution)
        return total

    def gan_discriminator_loss(self, batch: dict[str, Tensor], out: dict[str, Tensor]) -> Tensor:
        """What the patch discriminator minimises: real src targets scored real, the predicted src faces (detached)
        scored fake, both inside the loss weight."""
        with torch.autocast(device_type=batch["src_target"].device.type, enabled=False):
            target, _, w = self._targets(batch, "src")
            return discriminator_loss(self.patch_d(target * w), self.patch_d(out["src_src"].detach().float() * w))

    def true_face_discriminator_loss(self, batch: dict[str, Tensor], out: dict[str, Tensor]) -> Tensor:
        """What the code discriminator minimises: dst codes scored real, src codes fake (both detached)."""
        with torch.autocast(device_type=batch["src_target"].device.type, enabled=False):
            return discriminator_loss(self.code_d(out["dst_code"].detach().float()),
                                      self.code_d(out["src_code"].detach().float()))
