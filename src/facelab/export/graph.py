"""The module that is exported: a trained ``SwapModel``'s swap, NHWC in and out, as one graph.

Tensors: faces (N, R, R, 3) float32 BGR in [0, 1]; masks (N, R, R, 1) in [0, 1] (clamped, as
``train.swap.Swapper.predict`` clamps). The swap is the model's own ``net.swap_codes`` / ``decode_swap`` /
``dst_mask``, so the graph computes what merging computes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from facelab.train.models.nets import LIAENet


def has_morph(model: nn.Module) -> bool:
    """Whether the model's swap code differs from its dst code, so a morph between them means something.

    LIAE layouts draw dst from [B(dst), AB(dst)] and the swap from [AB(dst), AB(dst)]; DF layouts read the same
    code for both (only the decoder differs), so they have nothing to morph.
    """
    return isinstance(model.net, LIAENet)


def morph_code(c_swap: Tensor, c_dst: Tensor, morph_value: Tensor) -> Tensor:
    """``morph_value`` (1,) of the way from the dst code (0: the dst face redrawn) to the swap code (1: the plain
    swap). At 1 the swap code comes out exactly (the dst term is multiplied by 0)."""
    m = morph_value.reshape(1, 1, 1, 1).to(c_swap.dtype)
    return c_swap * m + c_dst * (1 - m)


class SwapGraph(nn.Module):
    """``forward(faces[, morph_value]) -> (face, swap mask, dst mask)``, NHWC, or in ``order`` (indices into that
    triple: DeepFaceLive's layout puts the dst mask first). Masks are ones when the model learns none and
    ``masks_always`` (DeepFaceLive reads three outputs), else left out."""

    def __init__(self, model: nn.Module, *, morph: bool, masks_always: bool, order: tuple[int, ...] = (0, 1, 2)):
        super().__init__()
        self.model = model.eval()
        self.morph = morph
        self.masks_always = masks_always
        self.order = order

    @property
    def has_masks(self) -> bool:
        return bool(self.model.learn_mask) or self.masks_always

    def forward(self, faces: Tensor, morph_value: Tensor | None = None) -> tuple[Tensor, ...]:
        out = self.swap(faces, morph_value)
        return tuple(out[i] for i in self.order) if len(out) == 3 else out

    def swap(self, faces: Tensor, morph_value: Tensor | None) -> tuple[Tensor, ...]:
        net = self.model.net
        x = faces.permute(0, 3, 1, 2)
        c_swap, c_dst = net.swap_codes(x)
        if self.morph:
            c_swap = morph_code(c_swap, c_dst, morph_value)
        images, swap_mask = net.decode_swap(c_swap)
        face = images[-1].float().clamp(0, 1).permute(0, 2, 3, 1)
        if not self.model.learn_mask:
            if not self.masks_always:
                return (face,)
            ones = torch.ones_like(face[..., :1])
            return face, ones, ones
        dst_mask = net.dst_mask(c_dst)
        as_nhwc = (lambda m: m.float().clamp(0, 1).permute(0, 2, 3, 1))
        return face, as_nhwc(swap_mask), as_nhwc(dst_mask)
