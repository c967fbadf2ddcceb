"""Real-looking occluders for XSeg's accuracy benchmark: hands with real skin, microphones, and pieces cut out of
other real photos, each an ``augment.Occluder`` (image (h, w, 3) uint8 BGR, alpha (h, w) float32 [0, 1]).

They are drawn differently from the training augmentations (``xseg.augment.synthetic_occluder``: ellipses,
polygons and bars with flat, striped or noise fills), so the benchmark measures what the segmenter learned about
"something in front of the face", not whether it recognises its own training shapes.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelab.xseg.augment import Occluder

SUPERSAMPLE = 4  # shapes are drawn at 4× and area-downsampled: edges anti-aliased like a photo's


def _capsule(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> None:
    """A filled stadium (a finger, a microphone's handle) from point ``a`` to ``b`` on a uint8 canvas."""
    cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, max(1, int(2 * radius)), cv2.LINE_AA)
    for end in (a, b):
        cv2.circle(canvas, tuple(int(v) for v in end), int(radius), 255, -1, cv2.LINE_AA)


def _downsample(big: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


def _shade(alpha: np.ndarray, strength: float) -> np.ndarray:
    """(h, w) float32 in [1 − strength, 1]: darker towards the shape's edge, as light falls on a rounded thing."""
    inside = (alpha > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    depth = depth / max(float(depth.max()), 1.0)
    return (1 - strength + strength * np.sqrt(depth)).astype(np.float32)


def hand_alpha(side: int, rng: np.random.Generator) -> np.ndarray:
    """(side, side) float32 alpha of an open hand seen flat: a palm, four fingers of random length and spread,
    a thumb, all turned by a random angle."""
    s = side * SUPERSAMPLE
    canvas = np.zeros((s, s), np.uint8)
    palm_c = np.array([0.5, 0.62]) * s
    palm = (int(0.2 * s), int(0.18 * s))
    cv2.ellipse(canvas, tuple(int(v) for v in palm_c), palm, 0, 0, 360, 255, -1, cv2.LINE_AA)
    spread = rng.uniform(0.05, 0.25)
    for k, base_x in enumerate(np.linspace(0.36, 0.64, 4)):
        angle = -np.pi / 2 + (k - 1.5) * spread
        length = s * rng.uniform(0.22, 0.34) * (0.8 if k in (0, 3) else 1.0)
        base = np.array([base_x * s, palm_c[1] - 0.12 * s])
        tip = base + length * np.array([np.cos(angle), np.sin(angle)])
        _capsule(canvas, base, tip, s * 0.045)
    thumb_base = palm_c + np.array([0.17, 0.02]) * s
    thumb_angle = rng.uniform(-0.9, -0.3)
    _capsule(canvas, thumb_base, thumb_base + s * 0.22 * np.array([np.cos(thumb_angle), np.sin(thumb_angle)]),
             s * 0.05)
    turn = cv2.getRotationMatrix2D((s / 2, s / 2), float(rng.uniform(-180, 180)), 1.0)
    canvas = cv2.warpAffine(canvas, turn, (s, s), flags=cv2.INTER_LINEAR)
    return _downsample(canvas, side).astype(np.float32) / 255


def skin_patch(face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A (h, w, 3) crop of real skin: the cheek between the nose and the jaw of an aligned face (iBUG-68 points
    2-4 and 31-33 bound it)."""
    points = np.asarray(landmarks)[[2, 3, 4, 31, 32, 33]]
    x0, y0 = np.floor(points.min(0)).astype(int)
    x1, y1 = np.ceil(points.max(0)).astype(int)
    h, w = face.shape[:2]
    x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return face[h // 3 : h // 2, w // 3 : w // 2]
    return face[y0:y1, x0:x1]


def hand(side: int, skin: np.ndarray, rng: np.random.Generator) -> Occluder:
    """A hand of ``side`` px textured with a real ``skin`` crop (mirrored and tiled to size), shaded at its
    edges, its brightness changed a little (another light)."""
    alpha = hand_alpha(side, rng)
    tile = np.concatenate([skin, skin[:, ::-1]], 1)
    tile = np.concatenate([tile, tile[::-1]], 0)
    reps = (side // tile.shape[0] + 1, side // tile.shape[1] + 1, 1)
    texture = np.tile(tile, reps)[:side, :side].astype(np.float32)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.0) * rng.uniform(0.75, 1.15)
    image = texture * _shade(alpha, 0.35)[..., None]
    return Occluder(np.clip(image, 0, 255).astype(np.uint8), alpha)


def microphone(side: int, rng: np.random.Generator) -> Occluder:
    """A hand-held microphone: a dark cylindrical handle and a round metal-mesh head at one end, at a random
    angle; the head sits near the centre (where it is pasted over the face)."""
    s = side * SUPERSAMPLE
    head_c = np.array([0.5, 0.5]) * s
    head_r = s * rng.uniform(0.14, 0.2)
    angle = rng.uniform(0, 2 * np.pi)
    tail = head_c + s * 0.75 * np.array([np.cos(angle), np.sin(angle)])
    handle = np.zeros((s, s), np.uint8)
    _capsule(handle, head_c, tail, head_r * rng.uniform(0.35, 0.5))
    head = np.zeros((s, s), np.uint8)
    cv2.circle(head, tuple(int(v) for v in head_c), int(head_r), 255, -1, cv2.LINE_AA)
    handle_a, head_a = (_downsample(m, side).astype(np.float32) / 255 for m in (handle, head))
    dark = rng.uniform(20, 60)
    image = np.full((side, side, 3), dark, np.float32) * _shade(handle_a, 0.6)[..., None] + rng.normal(0, 3, (side, side, 1))
    grid = np.arange(side)
    period = max(2, side // 24)
    mesh = ((grid[:, None] % period == 0) | (grid[None, :] % period == 0)).astype(np.float32)
    metal = (rng.uniform(110, 190) * (1 - 0.45 * mesh))[..., None] * _shade(head_a, 0.5)[..., None]
    image = image * (1 - head_a[..., None]) + metal * head_a[..., None]
    return Occluder(np.clip(image, 0, 255).astype(np.uint8), np.maximum(handle_a, head_a))


def blob_alpha(side: int, rng: np.random.Generator) -> np.ndarray:
    """(side, side) float32 alpha of a smooth random blob (a torn piece of a photo, a shoulder, a scarf)."""
    s = side * SUPERSAMPLE
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = np.clip(np.convolve(np.tile(rng.uniform(0.2, 0.48, 24), 3), np.ones(5) / 5, "same")[24:48], 0.1, 0.5)
    points = np.stack([0.5 + radii * np.cos(angles), 0.5 + radii * np.sin(angles)], 1) * s
    canvas = np.zeros((s, s), np.uint8)
    cv2.fillPoly(canvas, [points.astype(np.int32)], 255, cv2.LINE_AA)
    return _downsample(canvas, side).astype(np.float32) / 255


def photo_piece(side: int, photo: np.ndarray, rng: np.random.Generator) -> Occluder:
    """A blob cut out of a random place of a real ``photo`` (H, W, 3) uint8 BGR (another picture, another face)."""
    h, w = photo.shape[:2]
    crop = int(min(h, w) * rng.uniform(0.2, 0.6))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    image = cv2.resize(photo[y : y + crop, x : x + crop], (side, side), interpolation=cv2.INTER_AREA)
    return Occluder(image, blob_alpha(side, rng))


KINDS = ("hand", "microphone", "photo")


def real_looking_occluder(kind: str, side: int, rng: np.random.Generator, skin: np.ndarray,
                          photo: np.ndarray) -> Occluder:
    """One occluder of ``kind`` (a name in KINDS) and ``side`` px."""
    if kind == "hand":
        return hand(side, skin, rng)
    if kind == "microphone":
        return microphone(side, rng)
    if kind == "photo":
        return photo_piece(side, photo, rng)
    raise ValueError(f"unknown occluder kind {kind!r}; known: {', '.join(KINDS)}")
