"""The two autoencoder layouts every model uses: DF (one decoder per person) and LIAE (one shared decoder).

Both turn a batch of warped src and dst faces into three codes: the src code, the dst code and the swap
code (the dst face's code read as if it were src). Decoding the swap code gives the src person with the
dst's pose, expression and light.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from facelab.train.blocks import Decoder, Encoder, Inter

Decoded = tuple[list[Tensor], "Tensor | None"]  # images coarse → fine (N, 3, r, r), mask (N, 1, R, R) or None


@dataclass(frozen=True)
class NetSpec:
    """Widths and switches of one autoencoder.

    ``mask``: "none", "head" (a 4th output channel of the image decoder, the seed's first models) or
    "decoder" (a separate, narrower mask decoder with ``mask_widths``, SAE).
    """

    resolution: int
    enc_widths: tuple[int, ...]
    ae_dims: int
    code_ch: int
    dec_widths: tuple[int, ...]
    mask: str = "head"
    mask_widths: tuple[int, ...] = ()
    residual: bool = False
    multiscale: bool = False
    out_kernel: int = 5

    @property
    def low(self) -> int:
        """Side of the encoder's output (the dense code's grid)."""
        return self.resolution // 2 ** len(self.enc_widths)


class SideDecoder(nn.Module):
    """Image decoder plus (optionally) mask decoder for one code: code → (images, mask)."""

    def __init__(self, in_ch: int, spec: NetSpec):
        super().__init__()
        self.mask_mode = spec.mask
        out_ch = 4 if spec.mask == "head" else 3
        self.image = Decoder(in_ch, spec.dec_widths, out_ch, residual=spec.residual, multiscale=spec.multiscale,
                             out_kernel=spec.out_kernel)
        self.mask = Decoder(in_ch, spec.mask_widths, 1, out_kernel=spec.out_kernel) if spec.mask == "decoder" else None

    def forward(self, code: Tensor) -> Decoded:
        images = self.image(code)
        if self.mask_mode == "head":
            return [y[:, :3] for y in images], images[-1][:, 3:]
        return images, self.mask(code)[-1] if self.mask is not None else None

    def mask_only(self, code: Tensor) -> Tensor | None:
        """The mask alone (skips the image decoder when the mask has its own)."""
        if self.mask is not None:
            return self.mask(code)[-1]
        return self.forward(code)[1]


class DFNet(nn.Module):
    """Shared encoder and dense bottleneck, one decoder per person.

    Both people go through the same code space; each decoder learns to draw its own person from it. The
    swap code is simply the dst code, drawn by the src decoder.
    """

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.encoder = Encoder(spec.enc_widths)
        self.inter = Inter((spec.enc_widths[-1], spec.low, spec.low), spec.ae_dims, spec.code_ch)
        self.decoder_src = SideDecoder(spec.code_ch, spec)
        self.decoder_dst = SideDecoder(spec.code_ch, spec)

    def codes(self, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(src code, dst code, swap code) for training; src and dst share one encoder pass."""
        c_src, c_dst = self.inter(self.encoder(torch.cat([src, dst]))).chunk(2)
        return c_src, c_dst, c_dst

    def swap_codes(self, dst: Tensor) -> tuple[Tensor, Tensor]:
        """(swap code, dst code) of dst faces alone."""
        c_dst = self.inter(self.encoder(dst))
        return c_dst, c_dst

    def decode_pair(self, c_src: Tensor, c_dst: Tensor) -> tuple[Decoded, Decoded]:
        return self.decoder_src(c_src), self.decoder_dst(c_dst)

    def decode_swap(self, c_swap: Tensor) -> Decoded:
        return self.decoder_src(c_swap)

    def dst_mask(self, c_dst: Tensor) -> Tensor | None:
        return self.decoder_dst.mask_only(c_dst)


class LIAENet(nn.Module):
    """One encoder, two intermediate codes (AB for both people, B for dst only) and one shared decoder.

    The decoder reads a code of two halves: src faces are drawn from [AB(src), AB(src)], dst faces from
    [B(dst), AB(dst)]. So "both halves from AB" means "draw src"; B carries what only dst has. The swap code
    [AB(dst), AB(dst)] draws src with dst's pose and light — the src face morphs toward dst's look, which
    blends in better than DF at the cost of src likeness.
    """

    def __init__(self, spec: NetSpec):
        super().__init__()
        in_shape = (spec.enc_widths[-1], spec.low, spec.low)
        self.encoder = Encoder(spec.enc_widths)
        self.inter_ab = Inter(in_shape, spec.ae_dims, spec.code_ch)
        self.inter_b = Inter(in_shape, spec.ae_dims, spec.code_ch)
        self.decoder = SideDecoder(2 * spec.code_ch, spec)

    def codes(self, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features = self.encoder(torch.cat([src, dst]))
        ab_src, ab_dst = self.inter_ab(features).chunk(2)
        b_dst = self.inter_b(features[len(src):])
        return torch.cat([ab_src, ab_src], 1), torch.cat([b_dst, ab_dst], 1), torch.cat([ab_dst, ab_dst], 1)

    def swap_codes(self, dst: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encoder(dst)
        ab_dst = self.inter_ab(features)
        return torch.cat([ab_dst, ab_dst], 1), torch.cat([self.inter_b(features), ab_dst], 1)

    def decode_pair(self, c_src: Tensor, c_dst: Tensor) -> tuple[Decoded, Decoded]:
        # One decoder: a single pass over both halves of the batch uses the cores better than two.
        images, mask = self.decoder(torch.cat([c_src, c_dst]))
        n = len(c_src)
        split = [(y[:n], y[n:]) for y in images]
        masks = (None, None) if mask is None else (mask[:n], mask[n:])
        return ([s for s, _ in split], masks[0]), ([d for _, d in split], masks[1])

    def decode_swap(self, c_swap: Tensor) -> Decoded:
        return self.decoder(c_swap)

    def dst_mask(self, c_dst: Tensor) -> Tensor | None:
        return self.decoder.mask_only(c_dst)


LAYOUTS = {"df": DFNet, "liae": LIAENet}
