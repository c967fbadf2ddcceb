"""The augmentations that make a few labelled faces go far, as pure functions on one sample.

A sample is ``image`` (R, R, 3) uint8 BGR and ``mask`` (R, R) float32 in [0, 1] (1 = face) in the same aligned
square; every function takes a ``np.random.Generator`` and returns a new pair (or image). Geometric changes move
image and mask together; colour changes touch the image only; an occluder pasted over the face is "not face"
in the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Occluder:
    """Something that can cover a face: ``image`` (h, w, 3) uint8 BGR and ``alpha`` (h, w) float32 [0, 1]."""

    image: np.ndarray
    alpha: np.ndarray


def random_affine(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, rotate: float = 12.0,
                  scale: float = 0.08, shift: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by up to ±``rotate`` degrees and scale by up to ±``scale`` about the centre, then shift by up to
    ±``shift`` of the side. The image's border is reflected; outside the mask is "not face"."""
    size = image.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-rotate, rotate), 1 + rng.uniform(-scale, scale))
    matrix[:, 2] += rng.uniform(-shift, shift, 2) * size
    return (cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
            cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0))


def random_warp(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, strength: float = 0.03,
                cells: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random bend: a ``cells`` × ``cells`` grid of offsets of up to ``strength`` × side, cubic-upsampled
    to a dense displacement field, applied to image and mask alike."""
    size = image.shape[0]
    offsets = rng.uniform(-strength, strength, (2, cells, cells)).astype(np.float32) * size
    dx, dy = (cv2.resize(o, (size, size), interpolation=cv2.INTER_CUBIC) for o in offsets)
    grid = np.arange(size, dtype=np.float32)
    map_x, map_y = grid[None, :] + dx, grid[:, None] + dy
    return (cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT),
            cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderValue=0))


def random_flip(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right half the time (a face's mask has no handedness)."""
    if rng.random() < 0.5:
        return image[:, ::-1].copy(), mask[:, ::-1].copy()
    return image, mask


def random_hsv(image: np.ndarray, rng: np.random.Generator, hue: float = 12.0, sat: float = 0.25,
               val: float = 0.25) -> np.ndarray:
    """Turn the hue by up to ±``hue`` degrees and scale saturation and value by up to ±``sat`` / ±``val``."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + rng.uniform(-sat, sat)), 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * (1 + rng.uniform(-val, val)), 0, 1)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255)


def random_blur(image: np.ndarray, rng: np.random.Generator, chance: float = 0.25,
                max_sigma: float = 1.5) -> np.ndarray:
    """A Gaussian blur of sigma up to ``max_sigma`` px ``chance`` of the time (out-of-focus and compressed faces)."""
    if rng.random() >= chance:
        return image
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, max_sigma))


def random_noise(image: np.ndarray, rng: np.random.Generator, chance: float = 0.25,
                 max_sigma: float = 8.0) -> np.ndarray:
    """Gaussian noise of up to ``max_sigma`` grey levels ``chance`` of the time (sensor noise, dark scenes)."""
    if rng.random() >= chance:
        return image
    return _to_uint8(image + rng.normal(0, rng.uniform(1, max_sigma), image.shape))


def paste(image: np.ndarray, mask: np.ndarray, occluder: Occluder, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``occluder`` with its top-left corner at (x, y) (it may hang over the edges): the image takes its
    pixels by alpha, the mask loses the covered part (mask × (1 − alpha))."""
    size = image.shape[0]
    h, w = occluder.alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size), min(y + h, size)
    if x1 <= x0 or y1 <= y0:
        return image, mask
    alpha = occluder.alpha[y0 - y : y1 - y, x0 - x : x1 - x]
    part = occluder.image[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)
    image, mask = image.copy(), mask.copy()
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = _to_uint8(region + (part - region) * alpha[..., None])
    mask[y0:y1, x0:x1] *= 1 - alpha
    return image, mask


def paste_over_face(image: np.ndarray, mask: np.ndarray, occluder: Occluder,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``occluder`` at a random place whose centre lies on the face (a random mask pixel > 0.5)."""
    ys, xs = np.nonzero(mask > 0.5)
    if not len(xs):
        return image, mask
    k = int(rng.integers(len(xs)))
    h, w = occluder.alpha.shape
    return paste(image, mask, occluder, int(xs[k]) - w // 2, int(ys[k]) - h // 2)


def random_shape(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float32 alpha of a random shape filling most of the square: an ellipse, a random polygon or
    a bar (a microphone, a finger, a strand of hair), anti-aliased."""
    alpha = np.zeros((size, size), np.uint8)
    c = size / 2
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(rng.uniform(0.2, 0.5) * size), int(rng.uniform(0.2, 0.5) * size))
        cv2.ellipse(alpha, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    elif kind == 1:
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
        radii = rng.uniform(0.2, 0.5, len(angles)) * size
        points = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(alpha, [points], 255, cv2.LINE_AA)
    else:
        half = rng.uniform(0.05, 0.15) * size
        turn = rng.uniform(0, np.pi)
        d = np.array([np.cos(turn), np.sin(turn)]) * size / 2
        n = np.array([-d[1], d[0]]) / (size / 2) * half
        points = np.array([c - d + n, c + d + n, c + d - n, c - d - n]).astype(np.int32)
        cv2.fillPoly(alpha, [points], 255, cv2.LINE_AA)
    return alpha.astype(np.float32) / 255


def random_texture(size: int, rng: np.random.Generator, crops: list[np.ndarray] | None = None) -> np.ndarray:
    """(size, size, 3) uint8 BGR fill for a synthetic occluder: a flat colour, a gradient, stripes, noise, or a
    crop of one of ``crops`` (other images, resized)."""
    kind = int(rng.integers(5 if crops else 4))
    colour = rng.uniform(0, 255, 3)
    if kind == 0:
        return _to_uint8(np.broadcast_to(colour, (size, size, 3)))
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    if kind == 1:
        other = rng.uniform(0, 255, 3)
        t = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        return _to_uint8(colour + (other - colour) * t + np.zeros((size, size, 1)))
    if kind == 2:
        period = rng.uniform(4, 24)
        stripes = (np.sin(ramp * size * 2 * np.pi / period) > 0).astype(np.float32)[None, :, None]
        return _to_uint8(colour * stripes + rng.uniform(0, 255, 3) * (1 - stripes) + np.zeros((size, size, 1)))
    if kind == 3:
        noise = cv2.resize(rng.uniform(0, 255, (8, 8, 3)).astype(np.float32), (size, size))
        return _to_uint8(noise)
    crop = crops[int(rng.integers(len(crops)))]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def synthetic_occluder(face_size: int, rng: np.random.Generator, crops: list[np.ndarray] | None = None) -> Occluder:
    """A random shape of 15-55 % of ``face_size`` filled with a random texture."""
    side = max(4, int(face_size * rng.uniform(0.15, 0.55)))
    return Occluder(random_texture(side, rng, crops), random_shape(side, rng))


def cut_occluder(image: np.ndarray, alpha: np.ndarray) -> Occluder | None:
    """The part of ``image`` (H, W, 3) inside ``alpha`` (H, W) float [0, 1] (e.g. a face's exclude polygons),
    cropped to its bounding box; None when the alpha is empty."""
    ys, xs = np.nonzero(alpha > 0)
    if not len(xs):
        return None
    rows, cols = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    return Occluder(image[rows, cols].copy(), alpha[rows, cols].astype(np.float32))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
