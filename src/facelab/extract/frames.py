"""Frames to extract from: image files in a folder or a video decoded as a stream, each as 8-bit BGR.

Whatever the file holds (grayscale, alpha, 16-bit, float) becomes (H, W, 3) uint8 BGR. A file that cannot
be read yields ``None`` with the reason, so the caller can count and report it instead of stopping.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facelab.io.faceimage import image_header_size
from facelab.io.video import decode_frames, open_video, probe

MAX_FRAME_PIXELS = 200_000_000  # 16K × 12K; an 8K UHD frame is 33 Mpx


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
    """Read one image file as a Frame (``image`` None and ``error`` set when unreadable).

    A PNG or JPEG whose header states more than MAX_FRAME_PIXELS is refused before decoding: a crafted
    100000×100000 header would otherwise try to allocate tens of gigabytes.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        return Frame(path.name, None, f"cannot read ({err.strerror})")
    size = image_header_size(data.tobytes())
    if size is not None and size[0] * size[1] > MAX_FRAME_PIXELS:
        return Frame(path.name, None, f"{size[0]}×{size[1]} px is more than the {MAX_FRAME_PIXELS:,} pixels "
                                      "a frame may have")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:  # OpenCV refuses some damaged or oversized images by raising instead of returning None
        image = None
    if image is None:
        return Frame(path.name, None, "not a readable image (corrupt or unsupported)")
    try:
        return Frame(path.name, to_bgr8(image))
    except ValueError as err:
        return Frame(path.name, None, str(err))


def count_video_frames(path: str | Path) -> int:
    """The video's frame count as ``facelab video`` probes it (the container's index, else its packets)."""
    return probe(path).frames


def video_frames(path: str | Path, digits: int = 5) -> Iterator[Frame]:
    """Decode a video's frames one at a time (memory stays flat in video length), named 00001.png ... as
    frame extraction names them. VideoError when the file is not a video, and — as for ``facelab video
    extract`` — when it breaks off or ends well before the frame count it states (a truncated file)."""
    path = Path(path)
    expected = count_video_frames(path)
    container = open_video(path)
    with container:
        for index, frame in enumerate(decode_frames(container, path, expected), 1):
            yield Frame(f"{index:0{digits}d}.png", frame.to_ndarray(format="bgr24"))


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
