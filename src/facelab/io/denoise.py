"""Denoise a folder of frames (the extracted dst frames), edge-preserving in time and space.

Each frame is averaged with its two neighbours where they agree with it (noise) but not where they differ
(motion, so nothing ghosts), then smoothed with a bilateral filter, which averages only pixels of similar
colour (edges stay sharp). Three frames are in memory at a time; the folder's frames are replaced together
when all are done.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from facelab.errors import InputError
from facelab.io.frames import encode_image, list_frames, parallel_map, read_frame, staged_frames, write_file
from facelab.options import Option
from facelab.progress import Progress, ProgressCallback, no_progress

logger = logging.getLogger(__name__)

DENOISE_OPTIONS = (
    Option("factor", 5, "Denoise strength, 1 (light) to 20 (strong).", min=1, max=20),
)


def temporal_weights(neighbour: np.ndarray, frame: np.ndarray, sigma: float) -> np.ndarray:
    """Per-pixel weight in [0, 1] of ``neighbour`` when averaging it into ``frame`` (both HxWx3 float32).

    Gaussian in the colour difference, averaged over the channels and a 3×3 neighbourhood so single noisy
    pixels do not decide: ~1 where the two frames differ by noise, ~0 where something moved. Returns HxWx1.
    """
    import cv2

    d2 = ((neighbour - frame) ** 2).mean(axis=2)
    d2 = cv2.blur(d2, (3, 3))
    return np.exp(-d2 / (2.0 * sigma * sigma))[..., None]


def denoise_frame(frame: np.ndarray, neighbours: list[np.ndarray], factor: float) -> np.ndarray:
    """Denoise one HxWx3 uint8 BGR ``frame`` with its (0–2) HxWx3 uint8 ``neighbours`` in time.

    ``factor`` 1–20 sets both the noise level averaged away in time (σ = 3·factor grey levels) and the
    bilateral filter's colour range (σ = 2·factor). Returns HxWx3 uint8.
    """
    import cv2

    current = frame.astype(np.float32)
    total = current.copy()
    weight = np.ones(frame.shape[:2] + (1,), np.float32)
    for other in neighbours:
        other_f = other.astype(np.float32)
        w = temporal_weights(other_f, current, 3.0 * factor)
        total += w * other_f
        weight += w
    smoothed = cv2.bilateralFilter(total / weight, d=5, sigmaColor=2.0 * factor, sigmaSpace=2.0)
    return np.clip(smoothed + 0.5, 0, 255).astype(np.uint8)


def _windows(paths: list[Path]) -> Iterator[tuple[Path, np.ndarray, list[np.ndarray]]]:
    """(path, frame, [previous, next]) for each frame, reading each file once."""
    images = parallel_map(read_frame, paths)
    prev, cur = None, next(images)
    for i, path in enumerate(paths):
        nxt = next(images) if i + 1 < len(paths) else None
        if nxt is not None and nxt.shape != cur.shape:
            raise InputError(f"is {nxt.shape[1]}×{nxt.shape[0]}, unlike the frame before", path=paths[i + 1],
                             fix="every frame must have the same size: extract the frames again")
        yield path, cur, [f for f in (prev, nxt) if f is not None]
        prev, cur = cur, nxt


def denoise_frames(folder: str | Path, factor: int = 5, progress: ProgressCallback = no_progress) -> int:
    """Denoise every frame in ``folder`` in place (same names, format and size); returns the count.

    The denoised frames replace the originals only once all are written.
    """
    folder = Path(folder)
    paths = list_frames(folder)
    if not paths:
        raise InputError("holds no frames to denoise", path=folder, fix="run `facelab video extract dst` first")
    factor = DENOISE_OPTIONS[0].parse(factor)
    with staged_frames(folder) as staging:

        def work(item: tuple[Path, np.ndarray, list[np.ndarray]]) -> None:
            path, frame, neighbours = item
            ext = "jpg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
            write_file(staging / path.name, encode_image(denoise_frame(frame, neighbours, factor), ext))

        for done, _ in enumerate(parallel_map(work, _windows(paths)), 1):
            progress(Progress("denoise", done, len(paths)))
    logger.info("denoised %d frames in %s (factor %d)", len(paths), folder, factor)
    return len(paths)
