"""What every face-swap model shares: the training outputs, the loss, the swap call, mixed precision.

A model is a ``SwapModel`` holding one autoencoder (``nets.DFNet`` or ``nets.LIAENet``) built from its
options. Colour order BGR; tensors NCHW float32 in [0, 1]; masks (N, 1, R, R) in [0, 1].
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any, ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from facelab.errors import OptionError
from facelab.options import Option
from facelab.train import losses
from facelab.train.blocks import init_weights, set_checkpointing
from facelab.train.models.nets import LAYOUTS, NetSpec

log = logging.getLogger(__name__)

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
AMP_OPTION = Option(
    "amp", "auto",
    "Mixed precision: auto (bf16 on CPUs with AVX-512-BF16 or AMX, where it measured 2-4x faster; bf16, else fp16, "
    "on CUDA), off (float32), bf16 or fp16 (CUDA only).",
    choices=AMP_CHOICES, prompt="Mixed precision")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX-512-BF16 or AMX-BF16 in /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def amp_dtype(device: torch.device | str, amp: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for plain float32."""
    device = torch.device(device)
    if amp not in AMP_CHOICES:
        raise OptionError(f"--amp got {amp!r}", fix=f"use one of {', '.join(AMP_CHOICES)}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16
    if device.type == "cpu":
        if amp == "fp16":
            raise OptionError("--amp fp16 works on CUDA only", fix="use --amp bf16 or auto on the CPU")
        if amp == "bf16" or cpu_has_fast_bf16():
            return torch.bfloat16
    return None


def autocast_context(device: torch.device | str, amp: str) -> ContextManager:
    """``torch.autocast`` for ``amp`` on ``device`` (a no-op context for float32).

    fp16 needs a ``torch.amp.GradScaler`` around the optimizer step (see ``needs_grad_scaler``); bf16 does not.
    """
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def needs_grad_scaler(device: torch.device | str, amp: str) -> bool:
    return amp_dtype(device, amp) is torch.float16


def preferred_memory_format(device: torch.device | str, amp: str = "off") -> torch.memory_format:
    """channels_last on CUDA (tensor cores) and for bf16 on the CPU (oneDNN's bf16 convolutions measured ~9 %
    faster per SAE step in it); plain NCHW for float32 on the CPU, where channels_last measured slower."""
    device = torch.device(device)
    if device.type == "cuda" or amp_dtype(device, amp) is torch.bfloat16:
        return torch.channels_last
    return torch.contiguous_format


def check_multiple(option: Option, value: int, step: int) -> None:
    if value % step:
        raise OptionError(f"{option.flag} got {value}, not a multiple of {step}",
                          fix=f"use {option.describe_range()} in steps of {step}")


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
    def swap(self, dst: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Predicted src faces (N, 3, R, R) for dst faces, and the predicted src and dst masks (N, 1, R, R).

        Masks are None when the model learns none. Runs in eval mode without gradients, then restores the mode.
        """
        was_training = self.training
        self.eval()
        try:
            c_swap, c_dst = self.net.swap_codes(dst)
            images, src_mask = self.net.decode_swap(c_swap)
            dst_mask = self.net.dst_mask(c_dst) if self.learn_mask else None
        finally:
            self.train(was_training)
        as_float = (lambda t: None if t is None else t.float())
        return images[-1].float(), as_float(src_mask), as_float(dst_mask)

    def param_groups(self) -> list[dict[str, Any]]:
        """What the optimizer trains: every parameter, in one group."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def flops_per_iteration(self, batch_size: int, *, swap: bool = True) -> float:
        """Floating-point operations of one training step (forward_train + loss + backward) for ``batch_size``.

        Counted once by running the step on one face (FlopCounterMode; 2 per multiply-add) and scaled: the
        networks have no batch-coupled layers. ``swap`` as in ``forward_train``. Clears gradients.
        """
        if swap not in self._flops_per_sample:
            p = next(self.parameters())
            x = torch.rand(1, 3, self.resolution, self.resolution, device=p.device)
            m = torch.ones(1, 1, self.resolution, self.resolution, device=p.device)
            batch = {"src": x, "dst": x, "src_target": x, "dst_target": x, "src_mask": m, "dst_mask": m}
            with FlopCounterMode(display=False) as counter:
                self.loss(batch, self.forward_train(x, x, swap=swap))["total"].backward()
            self.zero_grad(set_to_none=True)
            self._flops_per_sample[swap] = float(counter.get_total_flops())
        return self._flops_per_sample[swap] * batch_size


LIGHTWEIGHT_OPTION = Option(
    "lightweight", False, "Lightweight autoencoder: half the channels (about a quarter of the memory and work), "
    "for GPUs with 2-4 GB.", prompt="Lightweight autoencoder", fixed=True)


def classic_spec(resolution: int, ae_dims: int, code_ch: int, *, lightweight: bool, residual: bool) -> NetSpec:
    """The seed's first models (H64, H128, DF, LIAEF128): encoder 128-1024 channels, decoder 512-128, the
    mask as a fourth decoder output; ``lightweight`` halves every width."""
    div = 2 if lightweight else 1
    return NetSpec(resolution=resolution, enc_widths=tuple(c // div for c in (128, 256, 512, 1024)),
                   ae_dims=ae_dims // div, code_ch=code_ch // div,
                   dec_widths=tuple(c // div for c in (512, 256, 128)), mask="head", residual=residual)
