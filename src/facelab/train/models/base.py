"""What every face-swap model shares: the training outputs, the loss, the swap call, extra trained parts.

A model is a ``SwapModel`` holding one autoencoder (``nets.DFNet`` or ``nets.LIAENet``) built from its
options, and optionally extra networks with their own optimizers (``ExtraPart``, e.g. discriminators).
Colour order BGR; tensors NCHW float32 in [0, 1]; masks (N, 1, R, R) in [0, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from facelab.errors import OptionError
from facelab.options import Option
from facelab.train import losses
from facelab.train.blocks import init_weights, set_checkpointing
from facelab.train.models.nets import LAYOUTS, NetSpec
from facelab.train.optim import OptimizerFactory, new_adam
from facelab.train.samples import FeedSettings

log = logging.getLogger(__name__)

def check_multiple(option: Option, value: int, step: int) -> None:
    if value % step:
        raise OptionError(f"{option.flag} got {value}, not a multiple of {step}",
                          fix=f"use {option.describe_range()} in steps of {step}")


PartLoss = Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]


@dataclass(frozen=True)
class ExtraPart:
    """A network trained beside the autoencoder by an optimizer of its own (e.g. a discriminator).

    ``module`` must be a submodule of the model: its weights are then saved, restored and moved with the
    model's, and the autoencoder's optimizer leaves its parameters alone. ``loss(batch, out)`` is the scalar
    this part minimises; the trainer calls it once per iteration, after the autoencoder's step, with the
    batch and the autoencoder's outputs of that iteration detached (the keys of ``forward_train``).
    ``learning_rate`` None: the run's ``learning_rate``. ``active`` False: not trained this run (e.g. a GAN
    whose power is 0 for now), but its optimizer state is still kept, so it can be switched on later and the
    saved layout stays the same.
    """

    module: nn.Module
    loss: PartLoss
    learning_rate: float | None = None
    active: bool = True


class SwapModel(nn.Module):
    """Base of every model. Subclasses declare ``option_specs`` and build ``self.net`` in ``__init__``.

    Loss switches (set by subclasses from their options): ``pixel_loss``, ``face_style_power``,
    ``bg_style_power`` (0-100), ``remove_gray_border``.
    """

    option_specs: tuple[Option, ...] = ()
    resolution: int
    face_type: str
    learn_mask: bool
    pixel_loss = False
    face_style_power = 0.0
    bg_style_power = 0.0
    remove_gray_border = False

    def __init__(self, options: dict[str, Any]):
        super().__init__()
        self.options = dict(options)
        self._use_checkpointing = False
        self._flops_per_sample: dict[bool, float] = {}

    def build(self, layout: str, spec: NetSpec, *, ca_init: bool = False) -> None:
        """Create ``self.net`` with ``layout`` ("df" or "liae") and initialise its weights."""
        self.resolution = spec.resolution
        self.learn_mask = spec.mask != "none"
        self.net = LAYOUTS[layout](spec)
        init_weights(self.net, ca=ca_init)
        log.debug("%s: %.1f M parameters", type(self).__name__, sum(p.numel() for p in self.parameters()) / 1e6)

    @property
    def use_checkpointing(self) -> bool:
        """Recompute activations in backward instead of storing them (less memory, ~30 % slower)."""
        return self._use_checkpointing

    @use_checkpointing.setter
    def use_checkpointing(self, on: bool) -> None:
        self._use_checkpointing = bool(on)
        set_checkpointing(self, self._use_checkpointing)

    def forward_train(self, src: Tensor, dst: Tensor, *, swap: bool = True) -> dict[str, Tensor]:
        """Training predictions for warped ``src`` and ``dst`` faces (N, 3, R, R).

        Keys: "src_src", "dst_dst", "dst_src" (N, 3, R, R); with a learned mask also "src_src_mask",
        "dst_dst_mask", "dst_src_mask" (N, 1, R, R); with a multiscale decoder also "src_src@r" and
        "dst_dst@r" for each lower scale r. ``swap=False`` leaves out the "dst_src" outputs; they are computed
        without gradients unless a style loss needs them.
        """
        c_src, c_dst, c_swap = self.net.codes(src, dst)
        (src_images, src_mask), (dst_images, dst_mask) = self.net.decode_pair(c_src, c_dst)
        out = {"src_src": src_images[-1], "dst_dst": dst_images[-1]}
        for s, d in zip(src_images[:-1], dst_images[:-1]):
            out[f"src_src@{s.shape[-1]}"], out[f"dst_dst@{d.shape[-1]}"] = s, d
        if self.learn_mask:
            out["src_src_mask"], out["dst_dst_mask"] = src_mask, dst_mask
        needs_swap_grad = self.face_style_power > 0 or self.bg_style_power > 0
        if swap or needs_swap_grad:
            with torch.set_grad_enabled(needs_swap_grad and torch.is_grad_enabled()):
                swap_images, swap_mask = self.net.decode_swap(c_swap)
            out["dst_src"] = swap_images[-1]
            if self.learn_mask:
                out["dst_src_mask"] = swap_mask
        return out

    def loss(self, batch: dict[str, Tensor], out: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scalar losses "src", "dst" and "total" (call backward on "total"), computed in float32.

        Per side: DSSIM + MSE (or pixel MSE) inside the blurred target mask, at every decoder scale; mask MSE
        when the mask is learned. The src side also carries the style losses of the dst→src prediction: face
        colour statistics toward dst (``face_style_power``) and the background toward dst (``bg_style_power``).
        """
        device_type = batch["src_target"].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            r = self.resolution
            border = losses.border_weight(r, device=batch["src_target"].device) if self.remove_gray_border else 1.0
            side_loss, weights = {}, {}
            for side in ("src", "dst"):
                target, mask = batch[f"{side}_target"].float(), batch[f"{side}_mask"].float()
                weights[side] = weight = losses.loss_mask(mask, r) * border
                total = losses.image_loss(out[f"{side}_{side}"].float(), target, weight, pixel=self.pixel_loss,
                                          window=losses.dssim_window(r))
                for key in (k for k in out if k.startswith(f"{side}_{side}@")):
                    size = out[key].shape[-1]
                    total = total + losses.image_loss(
                        out[key].float(), F.interpolate(target, size=size, mode="area"),
                        F.interpolate(weight, size=size, mode="area"), pixel=self.pixel_loss,
                        window=losses.dssim_window(size))
                if self.learn_mask:
                    total = total + 10 * losses.mse(out[f"{side}_{side}_mask"].float() * border, mask * border)
                side_loss[side] = total
            if self.face_style_power > 0:
                side_loss["src"] = side_loss["src"] + self.face_style_power * losses.style_loss(
                    out["dst_src"].float(), batch["dst_target"].float(), weights["dst"])
            if self.bg_style_power > 0:
                side_loss["src"] = side_loss["src"] + self.bg_style_power / 100 * losses.image_loss(
                    out["dst_src"].float(), batch["dst_target"].float(), (1 - weights["dst"]) * border,
                    pixel=self.pixel_loss, window=losses.dssim_window(r))
        return {"src": side_loss["src"], "dst": side_loss["dst"], "total": side_loss["src"] + side_loss["dst"]}

    @torch.no_grad()
    def swap(self, dst: Tensor, dst_mask: bool = True) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Predicted src faces (N, 3, R, R) for dst faces, and the predicted src and dst masks (N, 1, R, R).

        Masks are None when the model learns none, the dst mask also when ``dst_mask`` is False (its decoder is
        then not run). Runs in eval mode without gradients, then restores the mode.
        """
        was_training = self.training
        self.eval()
        try:
            c_swap, c_dst = self.net.swap_codes(dst)
            images, src_mask = self.net.decode_swap(c_swap)
            dst_mask = self.net.dst_mask(c_dst) if self.learn_mask and dst_mask else None
        finally:
            self.train(was_training)
        as_float = (lambda t: None if t is None else t.float())
        return images[-1].float(), as_float(src_mask), as_float(dst_mask)

    def extra_parts(self) -> dict[str, ExtraPart]:
        """Extra networks by name, each trained by its own optimizer on its own loss (none by default).

        The names and their order must follow from fixed (architecture) options only: the optimizer states are
        saved in that order. Switch a part off with ``active`` instead of leaving it out. A model whose
        autoencoder loss uses a part (a GAN term) computes that in ``loss``.
        """
        return {}

    def optimizer_factory(self, part: str) -> OptimizerFactory:
        """How to make the optimizer of ``part`` (``loop.AUTOENCODER`` or an extra part's name):
        ``factory(groups, lr, device)``. Adam with the seed's betas by default; optimizer modes 2 and 3 run
        whatever it makes on the CPU (``optim.CpuAdam``)."""
        return new_adam

    def feed_settings(self, opts: Mapping[str, Any]) -> FeedSettings:
        """How training samples are drawn and augmented, from the run's options (every option, not only the
        model's own)."""
        return FeedSettings(opts["batch_size"], opts["random_flip"], opts["sort_by_yaw"], opts["src_scale_mod"])

    def param_groups(self) -> list[dict[str, Any]]:
        """What the autoencoder's optimizer trains: every parameter outside the extra parts, in one group."""
        own = {id(p) for part in self.extra_parts().values() for p in part.module.parameters()}
        return [{"params": [p for p in self.parameters() if p.requires_grad and id(p) not in own]}]

    def flops_per_iteration(self, batch_size: int, *, swap: bool = True) -> float:
        """Floating-point operations of one training step (forward_train + loss + backward) for ``batch_size``.

        Counted once by running the step on one face (FlopCounterMode; 2 per multiply-add) and scaled: the
        networks have no batch-coupled layers. ``swap`` as in ``forward_train``. Clears gradients.
        """
        if swap not in self._flops_per_sample:
            p = next(self.parameters())
            x = torch.rand(1, 3, self.resolution, self.resolution, device=p.device)
            m = torch.ones(1, 1, self.resolution, self.resolution, device=p.device)
            batch = {"src": x, "dst": x, "src_target": x, "dst_target": x, "src_mask": m, "dst_mask": m,
                     "src_em_mask": m, "dst_em_mask": m}  # eye/mouth masks: for models that weigh them
            with FlopCounterMode(display=False) as counter:
                self.loss(batch, self.forward_train(x, x, swap=swap))["total"].backward()
            self.zero_grad(set_to_none=True)
            self._flops_per_sample[swap] = float(counter.get_total_flops())
        return self._flops_per_sample[swap] * batch_size
