"""SAEHD's autoencoders: the DF and LIAE layouts of ``nets`` with DeepFaceLab 2's variants.

An archi name is a layout and optional letters: ``df``, ``liae``, ``liae-ud``, ``df-udt`` ...

- ``u``: the encoder's output is pixel-normalised (divided by its root mean square over the whole feature map)
  before the dense code, so the code's scale cannot drift: steadier training, slightly better likeness.
- ``d``: the decoders stop at half resolution and a final convolution emits 4 sub-pixels per pixel
  (depth-to-space), so a face of 2× the side costs about the same as before; the resolution must then be a
  multiple of 32.
- ``t``: a deeper encoder (one more downscale, two residual blocks) and one more decoder stage: more capacity,
  ~25 % slower, closer likeness.

Grid sides (R = resolution): the dense code is R/16 (R/32 with ``d``); ``Inter`` upscales it once unless ``t``
(whose decoders upscale once more instead). Tensors NCHW, images BGR in [0, 1].

Every convolution that feeds a depth-to-space starts ICNR-initialised (``init_subpixel_convs``): with independent
random filters per sub-pixel, each of the 4-5 pixel shuffles between the code and the face paints its own 2×2
checkerboard, and the untrained decoder draws a fixed per-pixel noise texture (spatial std ~0.28 of the output at
96 px, df-ud). On a CPU budget it was still there after hundreds of iterations (the flat held-out SSIM of 0.21 and
the grid of the 64 px swaps), and the mask decoder stayed at a flat 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelab.train.blocks import Decoder, Downscale, Encoder, ResidualBlock, Upscale
from facelab.train.models.nets import DFNet, LIAENet

LAYOUTS = ("df", "liae")
VARIANT_LETTERS = "udt"
ARCHI_CHOICES = tuple(base + (f"-{v}" if v else "") for base in LAYOUTS
                      for v in ("", "u", "d", "t", "ud", "ut", "dt", "udt"))


def parse_archi(archi: str) -> tuple[str, frozenset[str]]:
    """"liae-ud" → ("liae", {"u", "d"}). Raises ValueError for an unknown layout or letter."""
    layout, _, letters = archi.partition("-")
    if layout not in LAYOUTS or set(letters) - set(VARIANT_LETTERS) or len(set(letters)) != len(letters):
        raise ValueError(f"unknown SAEHD archi {archi!r}")
    return layout, frozenset(letters)


@dataclass(frozen=True)
class SAEHDSpec:
    """Widths of one SAEHD autoencoder: encoder ``e_dims`` (first layer), code ``ae_dims``, decoder ``d_dims``
    (last stage = 2·d_dims channels), mask decoder ``mask_dims``."""

    resolution: int
    archi: str
    ae_dims: int
    e_dims: int
    d_dims: int
    mask_dims: int

    @property
    def layout(self) -> str:
        return parse_archi(self.archi)[0]

    def has(self, letter: str) -> bool:
        return letter in parse_archi(self.archi)[1]

    @property
    def code_res(self) -> int:
        """Side of the dense layer's output grid."""
        return self.resolution // (32 if self.has("d") else 16)

    @property
    def inter_res(self) -> int:
        """Side of the codes the decoders read (Inter's output)."""
        return self.code_res if self.has("t") else 2 * self.code_res

    @property
    def encoder_res(self) -> int:
        """Side of the encoder's output: the resolution halved 4 times (5 with ``t``), rounding up like the convs."""
        side = self.resolution
        for _ in range(5 if self.has("t") else 4):
            side = math.ceil(side / 2)
        return side

    @property
    def encoder_ch(self) -> int:
        return 8 * self.e_dims

    @property
    def code_ch(self) -> int:
        """Channels of one Inter's output (LIAE concatenates two of them)."""
        return self.ae_dims * (2 if self.layout == "liae" else 1)


def icnr_(conv: nn.Conv2d, scale: int = 2) -> None:
    """Make the ``scale``² sub-pixel filters of ``conv`` (whose output goes through ``pixel_shuffle(scale)``) equal,
    in place (ICNR, Aitken et al. 2017, "Checkerboard artifact free sub-pixel convolution").

    ``pixel_shuffle`` puts output channel ``c·scale² + k`` at sub-pixel ``k`` of channel ``c``, so copying filter
    ``c·scale²`` over its group makes the layer start as "convolve at low resolution, then nearest-neighbour
    upscale": no checkerboard at initialisation, while each filter keeps the distribution (and the He scale) of
    the init it had. Training then lets the sub-pixels diverge only where the faces ask for detail.
    """
    group = scale * scale
    if conv.out_channels % group:
        raise ValueError(f"{conv.out_channels} output channels are not a multiple of {group} sub-pixels")
    with torch.no_grad():
        conv.weight.copy_(conv.weight[::group].repeat_interleave(group, dim=0))
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[::group].repeat_interleave(group))


def init_subpixel_convs(net: nn.Module) -> None:
    """ICNR (``icnr_``) for every convolution of ``net`` that feeds a pixel shuffle: each ``Upscale``'s and the
    12-channel face head of a ``d`` decoder. Call after the network's ordinary weight init."""
    for m in net.modules():
        if isinstance(m, Upscale):
            icnr_(m.conv)
        elif isinstance(m, SAEHDDecoder) and m.double:
            icnr_(m.image.heads[0])


class SAEHDEncoder(nn.Module):
    """(N, 3, R, R) → (N, 8·e, encoder_res, encoder_res); pixel-normalised with ``u``."""

    def __init__(self, spec: SAEHDSpec):
        super().__init__()
        e = spec.e_dims
        if spec.has("t"):
            self.body = nn.Sequential(Downscale(3, e), ResidualBlock(e), Downscale(e, 2 * e), Downscale(2 * e, 4 * e),
                                      Downscale(4 * e, 8 * e), Downscale(8 * e, 8 * e), ResidualBlock(8 * e))
        else:
            self.body = Encoder((e, 2 * e, 4 * e, 8 * e))
        self.pixel_norm = spec.has("u")

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(x)
        if self.pixel_norm:
            x = x * torch.rsqrt(x.float().square().mean(dim=(1, 2, 3), keepdim=True) + 1e-6).to(x.dtype)
        return x


class SAEHDInter(nn.Module):
    """Dense bottleneck: flatten → ``ae_dims`` → (code_ch, code_res, code_res), upscaled ×2 unless ``t``."""

    def __init__(self, spec: SAEHDSpec):
        super().__init__()
        self.res, self.out_ch = spec.code_res, spec.code_ch
        self.dense1 = nn.Linear(spec.encoder_ch * spec.encoder_res ** 2, spec.ae_dims)
        self.dense2 = nn.Linear(spec.ae_dims, spec.code_ch * spec.code_res ** 2)
        self.upscale = nn.Identity() if spec.has("t") else Upscale(spec.code_ch, spec.code_ch)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dense2(self.dense1(x.flatten(1)))
        return self.upscale(x.view(-1, self.out_ch, self.res, self.res))


class SAEHDDecoder(nn.Module):
    """Code (N, in_ch, inter_res, inter_res) → ([face (N, 3, R, R)], mask (N, 1, R, R)); same interface as
    ``nets.SideDecoder``.

    Face stages 8d, 4d, 2d (8d, 8d, 4d, 2d with ``t``), each an upscale and a residual block; mask stages the same
    with ``mask_dims`` and no residual blocks. With ``d`` the face head emits 12 channels that depth-to-space turns
    into 3 at twice the side (sigmoid and pixel shuffle commute), and the mask gets one more upscale.
    """

    def __init__(self, in_ch: int, spec: SAEHDSpec):
        super().__init__()
        d, m = spec.d_dims, spec.mask_dims
        image_widths = (8 * d, 8 * d, 4 * d, 2 * d) if spec.has("t") else (8 * d, 4 * d, 2 * d)
        mask_widths = (8 * m, 8 * m, 4 * m, 2 * m) if spec.has("t") else (8 * m, 4 * m, 2 * m)
        self.double = spec.has("d")
        if self.double:
            mask_widths = mask_widths + (m,)
        self.image = Decoder(in_ch, image_widths, 12 if self.double else 3, residual=True,
                             out_kernel=3 if self.double else 1)
        self.mask = Decoder(in_ch, mask_widths, 1, out_kernel=1)

    def forward(self, code: Tensor) -> tuple[list[Tensor], Tensor]:
        face = self.image(code)[-1]
        if self.double:
            face = F.pixel_shuffle(face, 2)
        return [face], self.mask(code)[-1]

    def mask_only(self, code: Tensor) -> Tensor:
        return self.mask(code)[-1]


class SAEHDDFNet(DFNet):
    """DF (``nets.DFNet``'s codes and decoding) with SAEHD's encoder, bottleneck and decoders."""

    def __init__(self, spec: SAEHDSpec):
        nn.Module.__init__(self)  # DFNet's own parts are replaced wholesale, so its constructor is skipped
        self.encoder = SAEHDEncoder(spec)
        self.inter = SAEHDInter(spec)
        self.decoder_src = SAEHDDecoder(spec.code_ch, spec)
        self.decoder_dst = SAEHDDecoder(spec.code_ch, spec)


class SAEHDLIAENet(LIAENet):
    """LIAE (``nets.LIAENet``'s codes and decoding) with SAEHD's encoder, two bottlenecks and one decoder."""

    def __init__(self, spec: SAEHDSpec):
        nn.Module.__init__(self)  # see SAEHDDFNet
        self.encoder = SAEHDEncoder(spec)
        self.inter_ab = SAEHDInter(spec)
        self.inter_b = SAEHDInter(spec)
        self.decoder = SAEHDDecoder(2 * spec.code_ch, spec)


def build_net(spec: SAEHDSpec) -> nn.Module:
    return {"df": SAEHDDFNet, "liae": SAEHDLIAENet}[spec.layout](spec)
