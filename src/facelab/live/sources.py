"""Where live frames come from (a video file, a camera device) and where they go (a labelled video file).

Sources yield (H, W, 3) uint8 BGR frames as fast as they decode; the stream runner paces a file to its frame rate
when asked. Cameras are read through PyAV's ``v4l2`` input (Linux ``/dev/videoN``).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facelab import provenance
from facelab.errors import InputError, OptionError
from facelab.io.files import atomic_path
from facelab.io.video import (_encode_frame, _open_output, assemble_plan, decode_frames, encoder_input, even_size,
                              open_video, probe)

CAMERA = re.compile(r"^/dev/video\d+$")
CAMERA_FPS = Fraction(30)  # when the camera does not say
# Live output is encoded while the swap runs on the same cores: the fastest x264 preset that keeps the
# watermark (checked by the live tests through `facelab verify`).
LIVE_PRESET = "veryfast"
OUTPUT_KINDS = {".mp4": "mp4", ".avi": "avi"}


def is_camera(spec: str | Path) -> bool:
    return bool(CAMERA.match(str(spec)))


@dataclass
class FrameSource:
    """An open source: ``frames()`` yields BGR frames; ``fps`` its frame rate; ``count`` its frames per pass (None
    for a camera); ``camera``: frames arrive at their own pace (a file only when paced)."""

    name: str
    fps: Fraction
    count: int | None
    camera: bool
    _open: Any = None

    def frames(self) -> Iterator[np.ndarray]:
        """One pass over the source's frames (a camera: until it stops or the reader stops asking)."""
        container = self._open()
        try:
            for frame in (decode_frames(container, Path(self.name), self.count) if not self.camera
                          else container.decode(video=0)):
                yield frame.to_ndarray(format="bgr24")
        finally:
            container.close()


def open_source(spec: str | Path) -> FrameSource:
    """A video file, or a camera for ``/dev/videoN``; InputError/VideoError naming what is wrong."""
    if is_camera(spec):
        return _camera(Path(spec))
    info = probe(spec)  # VideoError for a missing, unreadable or empty file
    return FrameSource(str(spec), info.fps, info.frames, False, lambda: open_video(spec))


def _camera(path: Path) -> FrameSource:
    import av

    if not path.exists():
        raise InputError("no such camera device", path=path,
                         fix="plug the camera in and check its number (ls /dev/video*), or give a video file")
    if not stat.S_ISCHR(path.stat().st_mode):
        raise InputError("is not a camera device", path=path, fix="give /dev/videoN of a camera, or a video file")

    def open_camera() -> Any:
        try:
            return av.open(str(path), format="v4l2")
        except (av.error.FFmpegError, OSError) as err:
            reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
            raise InputError(f"cannot open the camera ({reason})", path=path,
                             fix="close other programs using it, and check you may read it (the video group)") \
                from None

    container = open_camera()
    try:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or stream.guessed_rate or CAMERA_FPS)
    finally:
        container.close()
    return FrameSource(str(path), fps, None, True, open_camera)


class VideoSink:
    """Writes swapped frames to a video labelled as synthetic (container metadata; the swapped pixels carry the
    watermark), atomically: the file appears complete when ``close`` is called, not before.

    Frames are placed at their source positions (``number`` / fps), so a recording with dropped frames keeps the
    source's timing (the last frame shown stays up). No sound: a stream that drops frames has no track to follow.
    """

    def __init__(self, path: str | Path, fps: Fraction, *, bitrate_mbps: float = 8.0, **details: Any):
        self.path = Path(path)
        kind = OUTPUT_KINDS.get(self.path.suffix.lower())
        if kind is None:
            raise OptionError(f"cannot write {self.path.suffix or 'files without a suffix'} live",
                              fix="name the output .mp4 (H.264) or .avi")
        plan = assemble_plan(kind, bitrate_mbps)
        self.plan = replace(plan, options={**plan.options, "preset": LIVE_PRESET}) if kind == "mp4" else plan
        self.fps, self.details = fps, details
        self._atomic = None
        self._out = self._stream = None
        self.frames = 0

    def write(self, number: int, image: np.ndarray) -> None:
        import av

        if self._out is None:
            self._start(image.shape[1], image.shape[0])
        array, fmt = encoder_input(image, self.plan.pix_fmt, self._size)
        _encode_frame(self._out, self._stream, av.VideoFrame.from_ndarray(array, format=fmt), number, self.fps)
        self.frames += 1

    def _start(self, width: int, height: int) -> None:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._size = even_size(width, height, self.plan.pix_fmt)
        self._out, self._stream = _open_output(tmp, self.plan, self.fps, width, height,
                                               provenance.label_container(step="live", **self.details))

    def close(self, ok: bool = True) -> None:
        """Finish the file (``ok``) or throw the partial file away."""
        if self._out is None:
            return
        try:
            if ok:
                self._out.mux(self._stream.encode(None))
        finally:
            self._out.close()
            self._out = None
            err = None if ok else RuntimeError("live recording abandoned")
            self._atomic.__exit__(type(err) if err else None, err, None)
