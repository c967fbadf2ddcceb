"""Layers the face-swap autoencoders are built from. Layers never import models.

Tensors are NCHW float; images BGR in [0, 1]. Every block keeps a ``checkpointing`` flag: when set (SAE
optimizer mode 3) its forward pass is recomputed during backward instead of keeping activations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def ca_kernels(out_ch: int, in_ch: int, k: int, *, eps_std: float = 0.05) -> Tensor:
    """Convolution-aware initial kernels (after Aghajanyan 2017), shape (out_ch, in_ch, k, k), float32.

    The idea: the ``in_ch`` kernels feeding one output filter should have orthogonal Fourier spectra, so
    each responds to different spatial frequencies instead of duplicating the others. The DFT is unitary
    (Parseval), so orthogonal spectra are exactly orthogonal kernels: every group of k² kernels of a filter
    is drawn as the rows of a random orthogonal matrix (QR of a Gaussian one). Gaussian noise of ``eps_std``
    (relative to the unit rows) softens the exact structure, and the result is rescaled to He variance
    ``2 / fan_in`` like any ReLU-family init.
    """
    basis = k * k
    groups = math.ceil(in_ch / basis)
    q, _ = torch.linalg.qr(torch.randn(out_ch, groups, basis, basis, dtype=torch.float64))
    x = q.transpose(-1, -2).reshape(out_ch, groups * basis, basis)[:, :in_ch]
    x = x + torch.randn(x.shape, dtype=x.dtype) * eps_std / math.sqrt(basis)
    x = x * math.sqrt(2.0 / (in_ch * basis)) / x.std()
    return x.reshape(out_ch, in_ch, k, k).float()


def init_weights(module: nn.Module, *, ca: bool = False) -> None:
    """He-uniform convolutions (for their LeakyReLU(0.1)), Glorot-uniform dense layers, zero biases.

    He init keeps the signal's scale through the LeakyReLU stack, so the sigmoid outputs start varied instead
    of a flat 0.5 (Glorot shrinks the signal layer by layer here). ``ca`` uses CA kernels for k×k convolutions.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            # 1×1 kernels have a single frequency: nothing to make orthogonal, so they keep He.
            if ca and m.kernel_size[0] == m.kernel_size[1] > 1 and m.groups == 1:
                with torch.no_grad():
                    m.weight.copy_(ca_kernels(m.out_channels, m.in_channels, m.kernel_size[0]))
            else:
                nn.init.kaiming_uniform_(m.weight, a=0.1, nonlinearity="leaky_relu")
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)


class Block(nn.Module):
    """Base of every block: ``forward`` runs ``body``, through activation checkpointing when asked."""

    checkpointing = False

    def forward(self, x: Tensor) -> Tensor:
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(self.body, x, use_reentrant=False)
        return self.body(x)

    def body(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Downscale(Block):
    """5×5 convolution, stride 2, LeakyReLU(0.1): (N, in_ch, H, W) → (N, out_ch, H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=2, padding=kernel_size // 2)

    def body(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.conv(x), 0.1)


class Upscale(Block):
    """3×3 convolution to 4·out_ch, LeakyReLU(0.1), pixel shuffle: (N, in_ch, H, W) → (N, out_ch, 2H, 2W)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch * 4, kernel_size, padding=kernel_size // 2)

    def body(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(F.leaky_relu(self.conv(x), 0.1), 2)


class ResidualBlock(Block):
    """x + conv(lrelu(conv(x))), then LeakyReLU(0.2); channels and size unchanged."""

    def __init__(self, ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(ch, ch, kernel_size, padding=kernel_size // 2)

    def body(self, x: Tensor) -> Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(x), 0.2))
        return F.leaky_relu(x + y, 0.2)


class Encoder(nn.Module):
    """Downscales through ``widths``: (N, 3, R, R) → (N, widths[-1], R / 2**len(widths), same)."""

    def __init__(self, widths: tuple[int, ...], in_ch: int = 3):
        super().__init__()
        chans = (in_ch, *widths)
        self.blocks = nn.Sequential(*(Downscale(a, b) for a, b in zip(chans, chans[1:])))

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class Inter(nn.Module):
    """Dense bottleneck: flatten → ``ae_dims`` → (out_ch, low, low) → upscale to (out_ch, 2·low, 2·low).

    ``in_shape`` is the encoder output (channels, low, low). The narrow code is what makes the autoencoder
    keep identity-free structure (pose, expression, light) shared between both people.
    """

    def __init__(self, in_shape: tuple[int, int, int], ae_dims: int, out_ch: int):
        super().__init__()
        in_ch, low, _ = in_shape
        self.low, self.out_ch = low, out_ch
        self.dense1 = nn.Linear(in_ch * low * low, ae_dims)
        self.dense2 = nn.Linear(ae_dims, out_ch * low * low)
        self.upscale = Upscale(out_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dense2(self.dense1(x.flatten(1)))
        return self.upscale(x.view(-1, self.out_ch, self.low, self.low))


class Decoder(nn.Module):
    """Upscales a code through ``widths`` and maps to ``out_ch`` channels with a sigmoid.

    (N, in_ch, r, r) → list of (N, out_ch, r·2**i, ...) for i = 1..len(widths) when ``multiscale`` (coarse to
    fine), else a one-element list with the finest output. ``residual`` adds a residual block after each
    upscale (SAE); the seed's first models had none.
    """

    def __init__(self, in_ch: int, widths: tuple[int, ...], out_ch: int, *, residual: bool = False,
                 multiscale: bool = False, out_kernel: int = 5):
        super().__init__()
        chans = (in_ch, *widths)
        self.ups = nn.ModuleList(Upscale(a, b) for a, b in zip(chans, chans[1:]))
        self.res = nn.ModuleList(ResidualBlock(c) if residual else nn.Identity() for c in widths)
        head_widths = widths if multiscale else widths[-1:]
        self.heads = nn.ModuleList(nn.Conv2d(c, out_ch, out_kernel, padding=out_kernel // 2) for c in head_widths)
        self.multiscale = multiscale

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        last = len(self.ups) - 1
        for i, (up, res) in enumerate(zip(self.ups, self.res)):
            x = res(up(x))
            if self.multiscale or i == last:
                outs.append(torch.sigmoid(self.heads[len(outs)](x)))
        return outs


def set_checkpointing(module: nn.Module, on: bool) -> None:
    """Turn activation checkpointing on or off for every block inside ``module``."""
    for m in module.modules():
        if isinstance(m, Block):
            m.checkpointing = on
