"""The segmenter network: a small U-Net, aligned face (N, 3, R, R) BGR [0, 1] → mask logits (N, 1, R, R).

Each of ``LEVELS`` levels halves the side with a stride-2 convolution and doubles the channels (capped at 8×
``channels``); the decoder upsamples, concatenates the encoder's features of the same side (the skip that keeps
edges sharp) and convolves. No normalisation layers: batches are small and the net trains fine without them.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.train.blocks import init_weights
from facelab.xseg.options import LEVELS


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1))


def _up(cin: int, cout: int, twice: bool) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout), _conv(cout, cout)) if twice else _conv(cin, cout)


class XSegNet(nn.Module):
    """U-Net of ``LEVELS`` levels whose first level is ``channels`` wide; see the module docstring."""

    def __init__(self, resolution: int, channels: int):
        super().__init__()
        self.resolution = resolution
        widths = [channels * min(2**i, 8) for i in range(LEVELS + 1)]
        self.stem = _conv(3, widths[0])  # one convolution at full size: the costliest layers, kept thin
        self.down = nn.ModuleList(nn.Sequential(_conv(widths[i], widths[i + 1], 2), _conv(widths[i + 1], widths[i + 1]))
                                  for i in range(LEVELS))
        self.up = nn.ModuleList(_up(widths[i + 1] + widths[i], widths[i], twice=i > 0) for i in reversed(range(LEVELS)))
        self.head = nn.Conv2d(widths[0], 1, 1)
        init_weights(self)

    def forward(self, faces: Tensor) -> Tensor:
        x = self.stem(faces * 2 - 1)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.head(x)


def build_net(options: Mapping[str, Any]) -> XSegNet:
    return XSegNet(int(options["resolution"]), int(options["channels"]))
