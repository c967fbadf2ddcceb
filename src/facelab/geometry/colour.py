"""Colour transfer: make a predicted face's colours match the dst face it replaces.

Every transfer takes ``source`` and ``target`` (H, W, 3) float32 BGR in [0, 1] (the same aligned square, so one
``mask`` (H, W) float32 in [0, 1] selects the face in both) and returns the recoloured ``source``, float32, clipped
to [0, 1]. Statistics are weighted by ``mask``; pixels outside it are recoloured too (the caller masks later).
The registered ``mkl``, ``idt`` and ``sot`` ignore the mask (the whole square's statistics), their ``-m`` variants
use it.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from facelab.registry import Registry

ColourTransfer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
COLOUR_TRANSFERS: Registry[ColourTransfer] = Registry("colour transfer")
_EPS = 1e-6
STATS_SIDE = 192  # colour statistics are taken on at most this many pixels a side: the same numbers, much faster


def _sampled(*images: np.ndarray) -> list[np.ndarray]:
    """Every ``step``-th pixel each way of each (H, W[, C]) image, so statistics cost O(STATS_SIDE²)."""
    step = max(1, images[0].shape[0] // STATS_SIDE)
    return [img[::step, ::step] for img in images]


def _weighted_stats(pixels: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (C,) and covariance (C, C) of (N, C) pixels under (N,) weights."""
    total = max(float(weight.sum()), _EPS)
    mean = (pixels * weight[:, None]).sum(0) / total
    centred = pixels - mean
    cov = (centred * weight[:, None]).T @ centred / total
    return mean, cov


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Square root (or inverse square root) of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, _EPS)
    return (vectors * (values ** (-0.5 if inverse else 0.5))) @ vectors.T


def _colour_stats(source: np.ndarray, target: np.ndarray, mask: np.ndarray):
    """(mean_s, cov_s, mean_t, cov_t) of the two BGR images under ``mask``, on a subsample."""
    small_s, small_t, weight = _sampled(source, target, mask)
    weight = weight.reshape(-1).astype(np.float64)
    return (*_weighted_stats(small_s.reshape(-1, 3).astype(np.float64), weight),
            *_weighted_stats(small_t.reshape(-1, 3).astype(np.float64), weight))


def _apply_linear(source: np.ndarray, matrix: np.ndarray, mean_s: np.ndarray, mean_t: np.ndarray) -> np.ndarray:
    """x → matrix (x − mean_s) + mean_t for every pixel, as one OpenCV colour transform."""
    affine = np.hstack([matrix, (mean_t - matrix @ mean_s)[:, None]]).astype(np.float32)
    return np.clip(cv2.transform(source.astype(np.float32), affine), 0.0, 1.0)


@COLOUR_TRANSFERS.register("none", "the predicted colours as they are")
def no_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return source


@COLOUR_TRANSFERS.register("rct", "Lab mean and spread inside the mask")
def rct(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001: move each Lab channel's mean and standard deviation to the target's."""
    lab = cv2.cvtColor(source, cv2.COLOR_BGR2LAB)
    small_s, small_t, weight = _sampled(lab, target, mask)
    small_t = cv2.cvtColor(np.ascontiguousarray(small_t), cv2.COLOR_BGR2LAB)
    weight = weight.reshape(-1).astype(np.float64)
    mean_s, cov_s = _weighted_stats(small_s.reshape(-1, 3).astype(np.float64), weight)
    mean_t, cov_t = _weighted_stats(small_t.reshape(-1, 3).astype(np.float64), weight)
    gain = np.sqrt(np.diag(cov_t)) / (np.sqrt(np.diag(cov_s)) + _EPS)
    lab = cv2.transform(lab, np.hstack([np.diag(gain), (mean_t - gain * mean_s)[:, None]]).astype(np.float32))
    lab = np.clip(lab, np.float32([0.0, -127.0, -127.0]), np.float32([100.0, 127.0, 127.0]))
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), 0.0, 1.0)


@COLOUR_TRANSFERS.register("lct", "colour covariance inside the mask")
def lct(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Linear colour transfer (Hertzmann's PCA form): x → C_t^½ C_s^-½ (x - μ_s) + μ_t in BGR."""
    mean_s, cov_s, mean_t, cov_t = _colour_stats(source, target, mask)
    return _apply_linear(source, _sqrtm(cov_t) @ _sqrtm(cov_s, inverse=True), mean_s, mean_t)


def mkl(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pitié & Kokaram 2007, the linear Monge-Kantorovitch map between the two colour Gaussians:
    T = C_s^-½ (C_s^½ C_t C_s^½)^½ C_s^-½ (the linear map of least total colour displacement)."""
    mean_s, cov_s, mean_t, cov_t = _colour_stats(source, target, mask)
    root_s, inv_root_s = _sqrtm(cov_s), _sqrtm(cov_s, inverse=True)
    return _apply_linear(source, inv_root_s @ _sqrtm(root_s @ cov_t @ root_s) @ inv_root_s, mean_s, mean_t)


def _random_axes(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) a random orthonormal basis of colour space, one axis per column."""
    return np.linalg.qr(rng.normal(size=(3, 3)))[0]


def idt(source: np.ndarray, target: np.ndarray, mask: np.ndarray, steps: int = 10, seed: int = 0,
        levels: int = 256) -> np.ndarray:
    """Iterative distribution transfer (Pitié, Kokaram & Dahyot 2005): ``steps`` times, rotate colour space at
    random and histogram-match the source to the target along each of the 3 axes.

    Each 1-D match is a monotone map of the projected value (the source's quantiles → the target's, ``levels``
    of them, taken under ``mask`` on a subsample), so it recolours every pixel, inside the mask or not, the same
    smooth way. Repeated, the whole 3-D colour distribution converges to the target's."""
    rng = np.random.default_rng(seed)
    small_s, small_t, weight = _sampled(source, target, mask)
    inside = weight.reshape(-1) > 0.5
    if inside.sum() < 2:
        return source
    sample_s = small_s.reshape(-1, 3)[inside].astype(np.float64)
    sample_t = small_t.reshape(-1, 3)[inside].astype(np.float64)
    flat = source.reshape(-1, 3).astype(np.float64)
    quantiles = np.linspace(0.0, 1.0, levels)
    for _ in range(steps):
        axes = _random_axes(rng)
        for k in range(3):
            axis = axes[:, k]
            # np.interp wants rising x: quantiles never fall, and ties only flatten the map there.
            xs = np.quantile(sample_s @ axis, quantiles)
            ys = np.quantile(sample_t @ axis, quantiles)
            for pixels in (sample_s, flat):
                along = pixels @ axis
                pixels += (np.interp(along, xs, ys) - along)[:, None] * axis[None, :]
    return np.clip(flat, 0.0, 1.0).astype(np.float32).reshape(source.shape)


def sot(source: np.ndarray, target: np.ndarray, mask: np.ndarray, steps: int = 10, seed: int = 0) -> np.ndarray:
    """Sliced optimal transport (Rabin et al. 2011): ``steps`` times, along 3 random orthogonal axes, move each
    masked source pixel's projection to the target's value at the same quantile. Non-linear; ~10 ms per 128² face."""
    rng = np.random.default_rng(seed)
    inside = mask.reshape(-1) > 0.5
    flat = source.reshape(-1, 3).astype(np.float64)
    moved = flat[inside].copy()
    target_px = target.reshape(-1, 3).astype(np.float64)[inside]
    if len(moved) < 2:
        return source
    ranks = np.linspace(0.0, 1.0, len(moved))
    for _ in range(steps):
        axes = _random_axes(rng)
        proj_s, proj_t = moved @ axes, np.sort(target_px @ axes, axis=0)
        for k in range(3):
            order = np.argsort(proj_s[:, k])
            wanted = np.interp(ranks, np.linspace(0.0, 1.0, len(proj_t)), proj_t[:, k])
            delta = np.empty(len(moved))
            delta[order] = wanted - proj_s[order, k]
            moved += delta[:, None] * axes[:, k][None, :]
    # Pixels outside the mask follow the mean shift of those inside, so the face edge stays continuous.
    out = flat + (moved - flat[inside]).mean(0)
    out[inside] = moved
    return np.clip(out, 0.0, 1.0).astype(np.float32).reshape(source.shape)


def _whole_square(transfer: ColourTransfer) -> ColourTransfer:
    """``transfer`` with its statistics taken over the whole aligned square (face and surroundings), not the mask."""

    def whole(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return transfer(source, target, np.ones(mask.shape, np.float32))

    whole.__doc__ = f"{transfer.__name__} over the whole aligned square."
    return whole


# As DeepFaceLab 2 names them: ``mkl``/``idt``/``sot`` take the colour statistics of the whole aligned square,
# their ``-m`` twins only those inside the face mask (the background around the face then counts for nothing).
for _name, _transfer, _what in (("mkl", mkl, "Monge-Kantorovitch"), ("idt", idt, "iterative distribution transfer"),
                                ("sot", sot, "sliced optimal transport")):
    COLOUR_TRANSFERS.register(_name, f"{_what} over the whole aligned square")(_whole_square(_transfer))
    COLOUR_TRANSFERS.register(f"{_name}-m", f"{_name} inside the mask only")(_transfer)


def hist_match(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None,
               threshold: int = 255) -> np.ndarray:
    """Per-channel histogram matching of ``source`` to ``target`` over ``mask`` (all pixels when None).

    ``threshold`` (0–255, the seed's "hist match threshold"): both 256-bin histograms are scaled so their peak
    is 255 and clipped at ``threshold`` before the CDFs are built — lower values damp the dominant tones,
    which keeps the match from over-shooting on faces with one big flat colour. 255 = plain matching.
    """
    out = np.empty_like(source, dtype=np.float32)
    inside = (mask.reshape(-1) > 0.5) if mask is not None else np.ones(source.shape[0] * source.shape[1], bool)
    if not inside.any():
        return source.astype(np.float32)
    for c in range(source.shape[2]):
        s = np.clip(source[..., c].reshape(-1) * 255.0, 0, 255)
        t = np.clip(target[..., c].reshape(-1) * 255.0, 0, 255)
        cdf_s, cdf_t = (_clipped_cdf(v[inside], threshold) for v in (s, t))
        levels = np.interp(cdf_s, cdf_t, np.arange(256))  # source level → target level at the same quantile
        out[..., c] = (np.interp(s, np.arange(256), levels) / 255.0).reshape(source.shape[:2])
    return out


def _clipped_cdf(values: np.ndarray, threshold: int) -> np.ndarray:
    hist = np.bincount(values.astype(np.int64), minlength=256)[:256].astype(np.float64)
    hist = np.minimum(hist * (255.0 / max(hist.max(), 1.0)), max(threshold, 1))
    cdf = np.cumsum(hist)
    return cdf / cdf[-1]


def degrade_colours(image: np.ndarray, power: float) -> np.ndarray:
    """Blend (H, W, 3) float [0, 1] ``image`` toward a 252-colour version of itself (6×7×6 levels of B×G×R),
    ``power`` 0–100 % — to match the banding of low-quality footage (the seed's "degrade colour power")."""
    if power <= 0:
        return image
    levels = np.array([5.0, 6.0, 5.0], np.float32)
    reduced = np.round(image * levels) / levels
    return (image + (reduced - image) * (power / 100.0)).astype(np.float32)
