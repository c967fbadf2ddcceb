"""Folders of video frames: names (``00001.png`` …), listing, reading and writing in parallel, and replacing a
folder's frames all at once so old and new frames never mix.

Frame files are BGR (or BGRA) uint8 images named by their 1-based frame number, zero-padded to 5 digits.
Other files and sub-folders (``aligned/``, ``merged/`` …) in a frames folder are left alone.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from facelab.errors import InputError, OutputError

logger = logging.getLogger(__name__)

FRAME_EXTS = ("png", "jpg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")  # what a frames folder may hold
_FRAME_NAME = re.compile(r"^(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)
_STAGING_PREFIX = ".frames-"

T = TypeVar("T")
R = TypeVar("R")


def frame_name(number: int, ext: str) -> str:
    """``frame_name(1, "png") == "00001.png"`` (1-based; more digits past 99999)."""
    return f"{number:05d}.{ext}"


def natural_key(name: str) -> tuple:
    """Sort key that orders the digit runs of a name by value: ``frame2.png`` before ``frame10.png``."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def list_images(folder: str | Path) -> list[Path]:
    """Image files (IMAGE_SUFFIXES) directly in ``folder``, in natural order; [] when the folder is missing.
    Hidden files are skipped: the temp files of an interrupted write (``.<name>.XXXXXXXX.png``) and other
    tools' are not images of the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                   and p.is_file()), key=lambda p: natural_key(p.name))


def list_frames(folder: str | Path) -> list[Path]:
    """Frame files (``00001.png`` …) in ``folder`` (not sub-folders), in frame-number order; [] when the folder
    is missing."""
    return [p for p in list_images(folder) if _FRAME_NAME.match(p.name)]


def workers() -> int:
    """Threads for image codecs (OpenCV releases the GIL while it encodes/decodes)."""
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(func: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """``map(func, items)`` on a thread pool, in order, with at most ``2 × threads`` items in flight.

    The bound keeps memory flat however long ``items`` is (a plain ``Executor.map`` submits everything at once).
    """
    threads = threads or workers()
    with ThreadPoolExecutor(threads) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_frame(path: Path, alpha: bool = False, alpha_dir: Path | None = None) -> np.ndarray:
    """A frame as HxWx3 BGR uint8, or HxWx4 BGRA when ``alpha``.

    With ``alpha``, a frame without its own alpha channel takes the same-named grey image in ``alpha_dir``
    (the merge step's masks); InputError when neither exists.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("cannot be read as an image", path=path, fix="re-run the step that wrote it")
    if not alpha:
        return image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return image
    mask = _find_mask(path, alpha_dir)
    if mask is None:
        raise InputError("has no alpha channel", path=path,
                         fix="merge with masks exported (RGBA PNGs or merged_mask/), or assemble to mp4/avi")
    mask_img = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    if mask_img is None or mask_img.shape != image.shape[:2]:
        raise InputError("is not a mask of the frame's size", path=mask, fix="re-run merge to write its masks")
    return np.dstack([image, mask_img])


def _find_mask(path: Path, alpha_dir: Path | None) -> Path | None:
    if alpha_dir is None:
        return None
    for ext in FRAME_EXTS:
        candidate = alpha_dir / f"{path.stem}.{ext}"
        if candidate.is_file():
            return candidate
    return None


def encode_image(image: np.ndarray, ext: str, jpeg_quality: int = 95) -> bytes:
    """PNG or JPEG bytes of a BGR(A) uint8 image.

    PNG uses zlib level 1 with the "up" filter and run-length matching: on 640×360 video frames that is ~2.5×
    faster than OpenCV's default (level 1, adaptive filters) and no bigger. Frames are working files, so
    speed wins over the last few percent of size.
    """
    import cv2

    if ext == "png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
        if hasattr(cv2, "IMWRITE_PNG_FILTER"):  # OpenCV >= 4.11
            params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    elif ext == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    else:
        raise ValueError(f"frame extension {ext!r} is not one of {FRAME_EXTS}")
    ok, data = cv2.imencode(f".{ext}", image, params)
    if not ok:
        raise OutputError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return data.tobytes()


def write_file(path: Path, data: bytes) -> None:
    """Write one frame file (inside a staging folder, so no atomic rename is needed per file)."""
    try:
        path.write_bytes(data)
    except OSError as err:
        raise OutputError(f"cannot write ({err.strerror})", path=path,
                          fix="free disk space or fix permissions") from None


@contextlib.contextmanager
def staged_frames(folder: str | Path) -> Iterator[Path]:
    """A hidden temp folder inside ``folder`` to write new frames into.

    On success the old frames of ``folder`` (files named like frames, any extension) are removed and the new
    ones moved in; on error the temp folder goes and the old frames stay. Leftovers of a crashed run (hidden
    ``.frames-*`` folders) are cleared first. The caller asks the user before replacing existing frames.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{_STAGING_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=folder))
    except OSError as err:
        raise OutputError(f"cannot write frames here ({err.strerror})", path=folder,
                          fix="choose a workspace folder you can write to") from None
    try:
        yield staging
        for old in list_frames(folder):
            old.unlink()
        for new in list_frames(staging):
            os.replace(new, folder / new.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
