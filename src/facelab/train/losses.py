"""Training losses: pure functions on NCHW float tensors, images in [0, 1], masks (N, 1, H, W) in [0, 1].

Compute them in float32 (the models cast predictions up before calling these): SSIM's variance terms lose
too much precision in bfloat16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# SSIM's stabilising constants for a dynamic range of 1 (Wang et al. 2004: K1 = 0.01, K2 = 0.03).
_C1 = 0.01 ** 2
_C2 = 0.03 ** 2


def gaussian_kernel1d(size: int, sigma: float, *, device=None, dtype=torch.float32) -> Tensor:
    """(size,) Gaussian weights summing to 1, centred on the middle tap."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _separable(x: Tensor, kernel: Tensor, padding: int) -> Tensor:
    """Depthwise 2-D filtering of every channel of (N, C, H, W) with the outer product of ``kernel``."""
    c, k = x.shape[1], kernel.numel()
    x = F.conv2d(x, kernel.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(padding, 0), groups=c)
    return F.conv2d(x, kernel.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, padding), groups=c)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Blur (N, C, H, W) with a Gaussian of ``sigma`` pixels (zero padding, same size out)."""
    radius = max(1, int(3 * sigma + 0.5))
    kernel = gaussian_kernel1d(2 * radius + 1, sigma, device=x.device, dtype=x.dtype)
    return _separable(x, kernel, radius)


def ssim(a: Tensor, b: Tensor, *, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity per image, (N,), for images (N, C, H, W) with values in [0, 1].

    Gaussian window of ``size`` taps (odd) and ``sigma``; only windows fully inside the image count
    ("valid"), as in the reference implementation of Wang et al. 2004 and TensorFlow's ``tf.image.ssim``.
    """
    if size % 2 != 1 or min(a.shape[-2:]) < size:
        raise ValueError(f"SSIM window {size} must be odd and fit in images of size {tuple(a.shape[-2:])}")
    c = a.shape[1]
    kernel = gaussian_kernel1d(size, sigma, device=a.device, dtype=a.dtype)
    # One depthwise pass over the five maps the statistics need.
    stats = _separable(torch.cat([a, b, a * a, b * b, a * b], 1), kernel, 0)
    mu_a, mu_b, aa, bb, ab = stats.split(c, 1)
    var_a, var_b, cov = aa - mu_a ** 2, bb - mu_b ** 2, ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a ** 2 + mu_b ** 2 + _C1) * (var_a + var_b + _C2)
    return (num / den).mean(dim=(1, 2, 3))


def dssim_window(resolution: int) -> int:
    """The SSIM window used for faces of ``resolution`` pixels: about resolution / 11.6, odd, at least 3."""
    size = max(3, int(resolution / 11.6))
    return size if size % 2 else size + 1


def dssim(a: Tensor, b: Tensor, *, size: int = 11) -> Tensor:
    """Structural dissimilarity (1 − SSIM) / 2, averaged over the batch: a scalar in [0, 1]."""
    return ((1 - ssim(a, b, size=size)) / 2).mean()


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error over every element: a scalar."""
    return (a - b).square().mean()


def loss_mask(mask: Tensor, resolution: int) -> Tensor:
    """The face mask the image loss is weighted with: blurred and widened so it reaches a little past the hull.

    Blurring with sigma resolution/32 and doubling the values below 0.5 gives a soft edge that is 1 on the
    hull's border, so the loss also learns the face's outline rather than stopping short of it.
    """
    return (gaussian_blur(mask, max(1.0, resolution / 32)).clamp(0, 0.5) * 2)


def border_weight(resolution: int, *, device=None, dtype=torch.float32) -> Tensor:
    """(1, 1, R, R) weight that is 0 on the outer R/16 pixels of the image and ramps to 1 over the next R/16.

    Used by "remove gray border": random warps pull pixels from outside the aligned face there.
    """
    band = max(1, resolution // 16)
    d = torch.arange(resolution, device=device, dtype=dtype)
    edge = torch.minimum(d, resolution - 1 - d)  # distance to the nearest edge, per axis
    ramp = ((edge - band) / band).clamp(0, 1)
    return (ramp[:, None] * ramp[None, :])[None, None]


def masked_stats(x: Tensor, mask: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel mean and standard deviation of ``x`` weighted by ``mask``: two (N, C) tensors."""
    w = mask.sum(dim=(2, 3)).clamp_min(eps)
    mean = (x * mask).sum(dim=(2, 3)) / w
    var = ((x - mean[..., None, None]).square() * mask).sum(dim=(2, 3)) / w
    return mean, (var + eps).sqrt()


def style_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Squared difference of masked colour statistics (mean and std per channel): a scalar.

    Pulls ``pred``'s colours and contrast inside ``mask`` toward ``target``'s without asking for the same
    pixels — the "face style" loss that gives the swapped face the dst's light and skin tone.
    """
    pm, ps = masked_stats(pred, mask)
    tm, ts = masked_stats(target, mask)
    return ((pm - tm).square() + (ps - ts).square()).mean()


def image_loss(pred: Tensor, target: Tensor, weight: Tensor, *, pixel: bool, window: int) -> Tensor:
    """Reconstruction loss of ``pred`` toward ``target`` where ``weight`` (N or 1, 1, H, W) is high.

    10·DSSIM + 10·MSE of the weighted images; ``pixel`` uses 50·MSE alone (sharper colour, blurrier detail).
    """
    p, t = pred * weight, target * weight
    if pixel:
        return 50 * mse(p, t)
    return 10 * dssim(p, t, size=window) + 10 * mse(p, t)
