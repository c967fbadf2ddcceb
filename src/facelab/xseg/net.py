"""The segmenter network: a small U-Net, aligned face (N, 3, R, R) BGR [0, 1] → mask logits (N, 1, R, R).

The stem folds each ``STEM`` × ``STEM`` block of pixels into channels (space-to-depth, lossless) and the head
unfolds ``STEM``² logits per cell back into pixels (a learned sub-pixel upsampling), so no convolution runs at
full size (at 256 px those layers cost most of the time), and a mask's edges are smooth enough to be drawn
from R/4 features.
Between them, each of ``LEVELS`` levels halves the side with a stride-2 convolution and doubles the channels
(capped at 4× ``channels``); the decoder upsamples, concatenates the encoder's features of the same side (the
skip that keeps edges sharp) and convolves. No normalisation layers: batches are small and it trains fine
without them.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.train.blocks import init_weights
from facelab.xseg.options import LEVELS, STEM


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1))


def _pair(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, stride), _conv(cout, cout))


class XSegNet(nn.Module):
    """U-Net of ``LEVELS`` levels between a space-to-depth stem and a sub-pixel head; see the module docstring.
    ``channels``: width at R/``STEM``."""

    def __init__(self, resolution: int, channels: int):
        super().__init__()
        self.resolution = resolution
        widths = [channels * min(2**i, 4) for i in range(LEVELS + 1)]
        self.stem = _conv(3 * STEM * STEM, widths[0])
        self.down = nn.ModuleList(_pair(widths[i], widths[i + 1], 2) for i in range(LEVELS))
        self.up = nn.ModuleList(_pair(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(LEVELS)))
        self.head = nn.Conv2d(widths[0], STEM * STEM, 3, 1, 1)
        init_weights(self)
        with torch.no_grad():  # every sub-pixel starts as the same filter: no checkerboard before training (ICNR)
            self.head.weight.copy_(self.head.weight[:1].expand_as(self.head.weight))

    def forward(self, faces: Tensor) -> Tensor:
        x = self.stem(F.pixel_unshuffle(faces * 2 - 1, STEM))
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return F.pixel_shuffle(self.head(x), STEM)


def build_net(options: Mapping[str, Any]) -> XSegNet:
    return XSegNet(int(options["resolution"]), int(options["channels"]))
