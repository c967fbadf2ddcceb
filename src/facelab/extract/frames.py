"""Frames to extract from: image files in a folder or a video decoded as a stream, each as 8-bit BGR.

Whatever the file holds (grayscale, alpha, 16-bit, float) becomes (H, W, 3) uint8 BGR. A file that cannot
be read yields ``None`` with the reason, so the caller can count and report it instead of stopping.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facelab.errors import VideoError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Frame:
    """One frame: its file name (for a video: the name frame extraction would give it), pixels or the
    reason it could not be read."""

    name: str
    image: np.ndarray | None
    error: str = ""


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded image → (H, W, 3) uint8 BGR.

    (H, W) or (H, W, 1) gray is repeated to 3 channels; (H, W, 4) BGRA drops alpha; uint16 is scaled by
    1/257; floats are taken as 0..1. Raises ValueError for other shapes or dtypes.
    """
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
    elif np.issubdtype(image.dtype, np.floating):
        image = np.clip(image * 255.0 + 0.5, 0, 255)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    image = image.astype(np.uint8, copy=False)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise ValueError(f"unsupported image shape {image.shape}")


def read_image(path: str | Path) -> Frame:
    """Read one image file as a Frame (``image`` None and ``error`` set when unreadable)."""
    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        return Frame(path.name, None, f"cannot read ({err.strerror})")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return Frame(path.name, None, "not a readable image (corrupt or unsupported)")
    try:
        return Frame(path.name, to_bgr8(image))
    except ValueError as err:
        return Frame(path.name, None, str(err))


def list_frames(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def count_video_frames(path: str | Path) -> int | None:
    """The frame count the container states, or None when it does not say."""
    import av

    try:
        with av.open(str(path)) as container:
            frames = container.streams.video[0].frames
    except (av.FFmpegError, IndexError, OSError) as err:
        raise VideoError(f"cannot open the video ({err})", path=path, fix="check the file plays") from None
    return frames or None


def video_frames(path: str | Path, digits: int = 5) -> Iterator[Frame]:
    """Decode a video's frames one at a time (memory stays flat in video length), named 00001.png ... as
    frame extraction names them. VideoError when the file is not a video."""
    import av

    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.FFmpegError, IndexError, OSError) as err:
        raise VideoError(f"cannot open the video ({err})", path=path, fix="check the file plays") from None
    stream.thread_type = "AUTO"
    with container:
        index = 0
        try:
            for frame in container.decode(stream):
                index += 1
                yield Frame(f"{index:0{digits}d}.png", frame.to_ndarray(format="bgr24"))
        except av.FFmpegError as err:
            log.warning("%s: decoding stopped after %d frames (%s)", path, index, err)


def read_ahead(frames: Iterator[Frame], depth: int = 8) -> Iterator[Frame]:
    """Produce ``frames`` from a background thread, at most ``depth`` ahead, so decoding overlaps detection."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                if stop.is_set():
                    return
                box.put(item)
        except BaseException as err:  # handed to the consumer, raised there
            box.put(err)
        finally:
            box.put(done)

    thread = threading.Thread(target=produce, daemon=True, name="frame-reader")
    thread.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass
