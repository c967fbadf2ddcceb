"""Discriminators SAEHD trains beside its autoencoder, and their losses. Layers never import models.

- ``PatchDiscriminator`` (GAN power): a U-Net that scores every ``patch_size`` square of a face as real or
  predicted, and every pixel through its decoder half. Its gradient pushes the predicted face toward real-face
  texture (pores, hair, sharp eyelids) that DSSIM + MSE average away.
- ``CodeDiscriminator`` (true-face power): tells the dense codes of src faces from those of dst faces. The
  autoencoder is trained to fool it, so src and dst codes share one distribution and the src decoder, fed a dst
  code at swap time, draws a face that looks more like src.

Both return logits; the losses are binary cross-entropy on them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_WIDTH = 512


def receptive_field(downscales: int, flat: int, kernel: int = 3) -> int:
    """Receptive field in pixels of ``downscales`` stride-2 convolutions followed by ``flat`` stride-1 ones, all
    ``kernel``×``kernel``: each layer widens the field by (kernel − 1) × the stride product before it."""
    field, jump = 1, 1
    for _ in range(downscales):
        field += (kernel - 1) * jump
        jump *= 2
    return field + flat * (kernel - 1) * jump


def patch_layers(patch_size: int, resolution: int, max_flat: int = 3) -> tuple[int, int]:
    """(downscales, flat layers) whose receptive field is nearest ``patch_size`` (fewest layers on a tie), keeping
    at least a 2×2 grid of patches on a ``resolution`` face and every level an exact halving (for the skips)."""
    max_down = 1
    while resolution % 2 ** (max_down + 1) == 0 and resolution // 2 ** (max_down + 1) >= 2:
        max_down += 1
    candidates = [(d, f) for d in range(1, max_down + 1) for f in range(max_flat + 1)]
    return min(candidates, key=lambda c: (abs(receptive_field(*c) - patch_size), c[0] + c[1]))


class PatchDiscriminator(nn.Module):
    """U-Net patch discriminator: (N, 3, R, R) face → (patch logits (N, 1, R/2^d, R/2^d), pixel logits (N, 1, R, R)).

    Widths start at ``dims`` and double per downscale up to 512. The decoder upsamples back with skip connections,
    so the pixel logits see both the patch verdict and the fine detail around each pixel.
    """

    def __init__(self, patch_size: int, resolution: int, dims: int):
        super().__init__()
        downs, flat = patch_layers(patch_size, resolution)
        widths = [min(dims * 2 ** i, MAX_WIDTH) for i in range(downs + 1)]
        self.stem = nn.Conv2d(3, widths[0], 1)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.flat = nn.ModuleList(nn.Conv2d(widths[-1], widths[-1], 3, padding=1) for _ in range(flat))
        self.patch_head = nn.Conv2d(widths[-1], 1, 1)
        self.up = nn.ModuleList(nn.ConvTranspose2d(b if i == 0 else 2 * b, a, 4, stride=2, padding=1)
                                for i, (a, b) in enumerate(zip(widths[-2::-1], widths[:0:-1])))
        self.pixel_head = nn.Conv2d(2 * widths[0], 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.leaky_relu(self.stem(x), 0.2)
        skips = []
        for conv in self.down:
            skips.append(x)
            x = F.leaky_relu(conv(x), 0.2)
        for conv in self.flat:
            x = F.leaky_relu(conv(x), 0.2)
        patch = self.patch_head(x)
        for conv, skip in zip(self.up, reversed(skips)):
            x = torch.cat([F.leaky_relu(conv(x), 0.2), skip], 1)
        return patch, self.pixel_head(x)


class CodeDiscriminator(nn.Module):
    """(N, C, r, r) dense code → (N, 1) logit: stride-2 3×3 convolutions of ``dims`` channels down to ≤ 2×2, then a
    dense layer."""

    def __init__(self, in_ch: int, code_res: int, dims: int = 256):
        super().__init__()
        layers, ch, res = [], in_ch, code_res
        while res > 2:
            layers += [nn.Conv2d(ch, dims, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            ch, res = dims, (res + 1) // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(ch * res * res, 1)

    def forward(self, code: Tensor) -> Tensor:
        return self.head(self.body(code).flatten(1))


def bce(logits: Tensor | tuple[Tensor, ...], real: bool) -> Tensor:
    """Mean binary cross-entropy of ``logits`` (one tensor or several, summed) against all-real or all-fake."""
    parts = logits if isinstance(logits, tuple) else (logits,)
    return sum(F.binary_cross_entropy_with_logits(t.float(), torch.full_like(t.float(), float(real))) for t in parts)


def discriminator_loss(real_logits, fake_logits) -> Tensor:
    """What a discriminator minimises: real scored real, fake scored fake, the two halves averaged."""
    return (bce(real_logits, True) + bce(fake_logits, False)) / 2
