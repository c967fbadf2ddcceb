"""Video files through PyAV (no system ffmpeg): probe, cut and assemble frames into a video with the dst's sound.

Everything streams: frames and audio packets pass through one at a time, so memory stays flat in video length.
Outputs are written to a temp file beside the target and renamed on success.

Times are seconds from the start of the video stream (its ``start_time`` is time 0), as a user reads them
off a player. Frame rates are :class:`fractions.Fraction` (23.976 fps is 24000/1001, exactly).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from facelab.errors import InputError, OptionError, OutputError, VideoError
from facelab.io.audio import AudioTrack
from facelab.io.files import atomic_path
from facelab.io.frames import (FRAME_EXTS, encode_image, frame_name, list_frames, parallel_map, read_frame,
                               staged_frames, write_file)
from facelab.options import Option
from facelab.progress import Progress, ProgressCallback, no_progress

logger = logging.getLogger(__name__)

_FIX_VIDEO = "give a complete, playable video file (.mp4, .mov, .avi, .mkv ...)"

EXTRACT_OPTIONS = (
    Option("fps", 0.0, "Frames per second to extract (fewer frames for a long src video); 0 = every frame.",
           min=0, max=1000),
    Option("ext", "png", "Image format of the frames: png (lossless) or jpg (smaller files).", choices=FRAME_EXTS),
    Option("jpeg_quality", 95, "JPEG quality of jpg frames, 1 to 100.", min=1, max=100),
)

CUT_OPTIONS = (
    Option("from", "00:00:00.000", "Start of the part to keep (HH:MM:SS.mmm, MM:SS or seconds).", type=str),
    Option("to", "end", "End of the part to keep (HH:MM:SS.mmm, MM:SS or seconds; 'end' = to the end).",
           type=str),
    Option("audio_track", 0, "Which audio track to keep, counting from 0.", min=0),
    Option("bitrate", 25.0, "Video bitrate of the cut file in Mbit/s (DeepFaceLab's 'MB/s').", min=0.1, max=1000),
)

ASSEMBLE_KINDS = ("mp4", "avi", "mp4-alpha", "mov-alpha")
ASSEMBLE_OPTIONS = (
    Option("ext", "mp4", "Output video: mp4 (H.264), avi (MPEG-4 part 2), mp4-alpha (lossless PNG in MP4, keeps "
           "alpha), mov-alpha (lossless QuickTime Animation, keeps alpha; opens in video editors).",
           choices=ASSEMBLE_KINDS),
    Option("bitrate", 16.0, "Video bitrate in Mbit/s for mp4 and avi (the alpha variants are lossless).",
           min=0.1, max=1000),
)


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream. ``track`` counts audio streams from 0; ``index`` is the stream's index in the file."""

    track: int
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` finds: the first video stream and every audio stream."""

    path: Path
    fps: Fraction
    frames: int
    width: int
    height: int
    duration: float
    codec: str
    audio: tuple[AudioInfo, ...] = field(default=())


@dataclass(frozen=True)
class EncodePlan:
    """How to write a video: container format, video codec and pixel format, codec options, audio codec.

    ``bitrate`` is in bit/s (None for lossless codecs); ``alpha`` means frames are fed as BGRA.
    """

    format: str
    codec: str
    pix_fmt: str
    bitrate: int | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    alpha: bool = False
    audio_codec: str = "aac"


# --- pure planning ---------------------------------------------------------------------------------------------

_AUDIO_FOR_FORMAT = {"mp4": "aac", "mov": "aac", "matroska": "aac", "avi": "libmp3lame", "webm": "libopus"}
_FORMAT_FOR_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi",
                      ".webm": "webm"}


def assemble_plan(kind: str, bitrate_mbps: float) -> EncodePlan:
    """The encoder for ``facelab video assemble --ext KIND``.

    Alpha choices were checked by round trip with this PyAV build: PNG in MP4 and QuickTime Animation (qtrle,
    ARGB) in MOV return the alpha channel bit-exact; VP9 in MP4 drops it, HEVC alpha is not built in, and
    ProRes 4444 is off by one level (not lossless).
    """
    rate = int(bitrate_mbps * 1_000_000)
    if kind == "mp4":
        return EncodePlan("mp4", "libx264", "yuv420p", rate, {"preset": "medium"})
    if kind == "avi":
        return EncodePlan("avi", "mpeg4", "yuv420p", rate, audio_codec="libmp3lame")
    if kind == "mp4-alpha":
        return EncodePlan("mp4", "png", "rgba", alpha=True)
    if kind == "mov-alpha":
        return EncodePlan("mov", "qtrle", "argb", alpha=True)
    raise OptionError(f"unknown output video {kind!r}", fix="use one of " + ", ".join(ASSEMBLE_KINDS))


def cut_plan(suffix: str, bitrate_mbps: float) -> EncodePlan:
    """The encoder for a cut file that keeps the original's container (chosen by its file suffix)."""
    fmt = _FORMAT_FOR_SUFFIX.get(suffix.lower())
    if fmt is None:
        raise OptionError(f"cannot write {suffix} files",
                          fix="convert the video to .mp4 first, or cut .mp4/.mov/.mkv/.avi/.webm files")
    codec = {"avi": "mpeg4", "webm": "libvpx-vp9"}.get(fmt, "libx264")
    options = {"preset": "medium"} if codec == "libx264" else {}
    return EncodePlan(fmt, codec, "yuv420p", int(bitrate_mbps * 1_000_000), options,
                      audio_codec=_AUDIO_FOR_FORMAT[fmt])


def even_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """Chroma-subsampled 4:2:0 encoders need even sizes: drop the last odd row/column."""
    if pix_fmt.endswith("420p"):
        return width - width % 2, height - height % 2
    return width, height


def encoder_input(image: np.ndarray, pix_fmt: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A BGR(A) uint8 frame cropped to ``size`` (w, h) and laid out for an encoder taking ``pix_fmt``:
    (array, PyAV format name). For yuv420p that is OpenCV's I420 (BT.601 limited range, as swscale's default),
    shape (h·3/2, w); otherwise the image as is, converted by the encoder.
    """
    import cv2

    w, h = size
    image = np.ascontiguousarray(image[:h, :w])
    if pix_fmt == "yuv420p":
        return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), "yuv420p"
    return image, "bgra" if image.shape[2] == 4 else "bgr24"


_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> float:
    """``HH:MM:SS.mmm``, ``MM:SS(.mmm)`` or seconds → seconds (float). OptionError on anything else."""
    match = _TIME.match(text.strip())
    if not match:
        raise OptionError(f"time {text!r} is not HH:MM:SS.mmm", fix="write it like 00:01:02.500 or 62.5")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def frame_time(pts: int | None, time_base: Fraction, start: int | None) -> float:
    """Seconds of a frame/packet from the stream start (``pts`` and ``start`` in ``time_base`` units)."""
    return float(((pts or 0) - (start or 0)) * time_base)


# --- probing ---------------------------------------------------------------------------------------------------

def open_video(path: str | Path) -> Any:
    """Open a video for reading; VideoError naming the file when it is missing, not a video or damaged."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError("no such video file", path=path, fix="check the path (or put the video there)")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoError(f"cannot be read as a video ({_reason(err)})", path=path,
                         fix=_FIX_VIDEO + "; a truncated download must be fetched again") from None
    if not container.streams.video:
        container.close()
        raise VideoError("has no video stream (audio only?)", path=path, fix=_FIX_VIDEO)
    return container


def probe(path: str | Path) -> VideoInfo:
    """Frame rate, frame count, size, duration and audio streams of a video.

    The frame count comes from the container's index when it has one, else by counting packets (no decoding).
    """
    path = Path(path)
    container = open_video(path)
    try:
        vs = container.streams.video[0]
        fps = Fraction(vs.average_rate or vs.guessed_rate or vs.base_rate or 0)
        if fps <= 0:
            raise VideoError("has no frame rate", path=path, fix=_FIX_VIDEO)
        duration = _stream_duration(vs)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        frames = vs.frames or _count_packets(container, vs, path)
        if not frames:
            raise VideoError("has no video frames", path=path, fix=_FIX_VIDEO)
        if duration is None:
            duration = float(frames / fps)
        audio = tuple(
            AudioInfo(track=i, index=a.index, codec=a.codec_context.name, sample_rate=a.codec_context.sample_rate,
                      channels=a.codec_context.channels, duration=_stream_duration(a))
            for i, a in enumerate(container.streams.audio))
        return VideoInfo(path=path, fps=fps, frames=int(frames), width=vs.codec_context.width,
                         height=vs.codec_context.height, duration=duration, codec=vs.codec_context.name, audio=audio)
    finally:
        container.close()


def _stream_duration(stream: Any) -> float | None:
    return float(stream.duration * stream.time_base) if stream.duration else None


def _count_packets(container: Any, stream: Any, path: Path) -> int:
    import av

    try:
        count = sum(1 for p in container.demux(stream) if p.size)
    except av.error.FFmpegError as err:
        raise VideoError(f"is damaged ({_reason(err)})", path=path, fix=_FIX_VIDEO) from None
    container.seek(0)
    return count


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0]


def decode_frames(container: Any, path: Path, expected: int | None = None) -> Iterator[Any]:
    """The video frames of an open container, decoded with threads; VideoError when the file breaks off.

    ``expected`` (the probed count) catches files that end early without a decoder error.
    """
    import av

    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    count = 0
    try:
        for frame in container.decode(vs):
            count += 1
            yield frame
    except av.error.FFmpegError as err:
        raise VideoError(f"is damaged after frame {count} ({_reason(err)})", path=path,
                         fix="the file is truncated or corrupt: fetch or export it again") from None
    # Containers round their frame counts; a real truncation loses far more than a frame or two.
    if expected and count < expected - 2:
        raise VideoError(f"ends after {count} of {expected} frames", path=path,
                         fix="the file is truncated: fetch or export it again")


# --- writing ---------------------------------------------------------------------------------------------------

def _open_output(path: Path, plan: EncodePlan, fps: Fraction, width: int, height: int,
                 metadata: Mapping[str, str] | None) -> tuple[Any, Any]:
    import av

    try:
        out = av.open(str(path), "w", format=plan.format)
    except (av.error.FFmpegError, OSError) as err:
        raise OutputError(f"cannot write ({_reason(err)})", path=path, fix="choose a folder you can write to") from None
    for key, value in (metadata or {}).items():
        out.metadata[key] = value
    stream = out.add_stream(plan.codec, rate=fps, options=dict(plan.options))
    stream.width, stream.height = even_size(width, height, plan.pix_fmt)
    stream.pix_fmt = plan.pix_fmt
    if plan.bitrate:
        stream.bit_rate = plan.bitrate
    stream.thread_type = "AUTO"
    return out, stream


def _encode_frame(out: Any, stream: Any, frame: Any, index: int, fps: Fraction) -> None:
    frame.pts = index
    frame.time_base = 1 / fps
    out.mux(stream.encode(frame))


def _video_origin(container: Any) -> float:
    vs = container.streams.video[0]
    return frame_time(vs.start_time, vs.time_base, 0)


# --- the steps -----------------------------------------------------------------------------------------------------

def fps_keep(t: float, wanted: int, fps: float, tolerance: float) -> int | None:
    """Sampling at ``fps``: output frame n (at n/fps s) is the first input frame at or after n/fps.

    ``wanted`` is the next output frame; ``tolerance`` (half an input frame) absorbs timestamp jitter. Returns
    the output frame after the one the frame at ``t`` s fills, or None when it is skipped. A clip of D seconds
    gives about ``D × fps`` frames.
    """
    if t < wanted / fps - tolerance:
        return None
    return int((t + tolerance) * fps) + 1


def extract_frames(video: str | Path, out_dir: str | Path, fps: float | None = None, ext: str = "png",
                   jpeg_quality: int = 95, overwrite: bool = False,
                   progress: ProgressCallback = no_progress) -> int:
    """Write the frames of ``video`` into ``out_dir`` as ``00001.png`` … (BGR; PNG or JPEG); returns the count.

    ``fps`` None/0 (or at least the video's rate) keeps every frame. Frames already in ``out_dir`` are
    replaced only with ``overwrite`` (else OutputError); new frames appear only once all are written.
    """
    if ext not in FRAME_EXTS:
        raise OptionError(f"frame format {ext!r}", fix="use png or jpg")
    video, out_dir = Path(video), Path(out_dir)
    info = probe(video)
    target = float(fps) if fps and fps < info.fps else None
    old = list_frames(out_dir)
    if old and not overwrite:
        raise OutputError(f"already holds {len(old)} frames", path=out_dir,
                          fix="pass --overwrite to replace them, or move them away first")
    total = info.frames if target is None else max(1, math.ceil(info.duration * target))
    container = open_video(video)
    try:
        with staged_frames(out_dir) as staging:

            def save(item: tuple[int, Any]) -> None:
                number, frame = item
                write_file(staging / frame_name(number, ext),
                           encode_image(frame.to_ndarray(format="bgr24"), ext, jpeg_quality))

            done = 0
            for done, _ in enumerate(parallel_map(save, _selected(container, video, info, target)), 1):
                progress(Progress("extract", done, total))
    finally:
        container.close()
    logger.info("extracted %d frames of %s into %s", done, video, out_dir)
    return done


def _selected(container: Any, video: Path, info: VideoInfo, fps: float | None) -> Iterator[tuple[int, Any]]:
    """(1-based output number, frame) for every frame kept at ``fps`` (None: all)."""
    number, wanted = 0, 0
    vs = container.streams.video[0]
    tolerance = 0.5 / float(info.fps)
    for frame in decode_frames(container, video, expected=info.frames):
        if fps is not None:
            after = fps_keep(frame_time(frame.pts, frame.time_base, vs.start_time), wanted, fps, tolerance)
            if after is None:
                continue
            wanted = after
        number += 1
        yield number, frame


def cut(video: str | Path, start: float = 0.0, end: float | None = None, audio_track: int = 0,
        bitrate_mbps: float = 25.0, out_path: str | Path | None = None,
        progress: ProgressCallback = no_progress) -> Path:
    """Keep ``start``..``end`` seconds of ``video`` in ``NAME_cut.EXT`` beside it (the original stays).

    Video is re-encoded (frame-exact cut) at ``bitrate_mbps``; only audio track ``audio_track`` is kept,
    re-encoded sample-exact to the same span. Returns the written path.
    """
    video = Path(video)
    info = probe(video)
    end = info.duration if end is None else min(end, info.duration)
    if start < 0 or start >= end:
        raise OptionError(f"cannot cut {start:.3f}s to {end:.3f}s of {video.name} ({info.duration:.3f}s long)",
                          fix="give --from before --to, both inside the video")
    if info.audio and audio_track >= len(info.audio):
        raise OptionError(f"{video.name} has {len(info.audio)} audio track(s), no track {audio_track}",
                          fix=f"use --audio-track 0 to {len(info.audio) - 1}")
    out_path = Path(out_path) if out_path else video.with_name(f"{video.stem}_cut{video.suffix}")
    plan = cut_plan(out_path.suffix, bitrate_mbps)
    half_frame = 0.5 / float(info.fps)
    total = max(1, round((end - start) * info.fps))
    written = 0
    with atomic_path(out_path) as tmp:
        out, vstream = _open_output(tmp, plan, info.fps, info.width, info.height, None)
        src = open_video(video)
        audio = None
        try:
            vs = src.streams.video[0]
            origin = _video_origin(src)
            src.seek(round((start + origin) / vs.time_base), stream=vs, backward=True)
            if info.audio:
                # A second reader keeps the audio flowing in step with the video without buffering either.
                asrc = open_video(video)
                avs = asrc.streams.video[0]
                asrc.seek(round((max(0.0, start - 1.0) + origin) / avs.time_base), stream=avs, backward=True)
                audio = AudioTrack(asrc, asrc.streams.audio[audio_track], out, plan.audio_codec, origin,
                                   (start, end), reencode=True)
            for frame in decode_frames(src, video):
                t = frame_time(frame.pts, frame.time_base, vs.start_time)
                if t < start - half_frame:
                    continue
                if t >= end - half_frame:
                    break
                _encode_frame(out, vstream, frame, written, info.fps)
                written += 1
                if audio:
                    audio.mux_until(out, written / float(info.fps))
                progress(Progress("cut", written, total))
            if written < total - 2:
                raise VideoError(f"ends after {start + written / float(info.fps):.3f}s, before the cut's end",
                                 path=video, fix="the file is truncated: fetch or export it again")
            out.mux(vstream.encode(None))
            if audio:
                audio.finish(out)
        finally:
            src.close()
            if audio:
                audio.close()
            out.close()
    logger.info("cut %s: %d frames from %.3fs to %.3fs → %s", video, written, start, end, out_path)
    return out_path


def assemble(frames_dir: str | Path, dst_video: str | Path, out_path: str | Path, kind: str = "mp4",
             bitrate_mbps: float = 16.0, alpha_dir: str | Path | None = None,
             metadata: Mapping[str, str] | None = None, progress: ProgressCallback = no_progress) -> Path:
    """Encode the frames of ``frames_dir`` (in frame-number order) into ``out_path`` at the fps of ``dst_video``,
    with every audio track of ``dst_video`` (copied when the container takes its codec, else re-encoded),
    aligned to the first frame and ending with the last. ``kind`` is one of :data:`ASSEMBLE_KINDS`; the alpha
    kinds take alpha from RGBA frames or from same-named masks in ``alpha_dir``. ``metadata`` goes into the
    container's tags.
    """
    import av

    frames_dir, out_path = Path(frames_dir), Path(out_path)
    frames = list_frames(frames_dir)
    if not frames:
        raise InputError("holds no frames to assemble", path=frames_dir, fix="run `facelab merge` first")
    info = probe(dst_video)
    if len(frames) != info.frames:
        logger.warning("%d frames in %s but %s has %d; the sound follows the frames", len(frames), frames_dir,
                       info.path.name, info.frames)
    plan = assemble_plan(kind, bitrate_mbps)

    masks = Path(alpha_dir) if alpha_dir else None
    height, width = read_frame(frames[0], alpha=plan.alpha, alpha_dir=masks).shape[:2]
    size = even_size(width, height, plan.pix_fmt)

    def read(path: Path) -> tuple[tuple[int, int], np.ndarray, str]:
        # In the worker threads: file decode and colour conversion run in parallel, off the encoder's thread.
        image = read_frame(path, alpha=plan.alpha, alpha_dir=masks)
        return (image.shape[1], image.shape[0]), *encoder_input(image, plan.pix_fmt, size)

    end = len(frames) / float(info.fps)
    with atomic_path(out_path) as tmp:
        out, vstream = _open_output(tmp, plan, info.fps, width, height, metadata)
        tracks: list[AudioTrack] = []
        try:
            for a in info.audio:
                src = open_video(dst_video)
                tracks.append(AudioTrack(src, src.streams.audio[a.track], out, plan.audio_codec,
                                         _video_origin(src), (0.0, end)))
            for i, ((w, h), array, fmt) in enumerate(parallel_map(read, frames)):
                if (w, h) != (width, height):
                    raise InputError(f"is {w}×{h}, the first frame {width}×{height}", path=frames[i],
                                     fix="every frame must have the same size: re-run merge")
                frame = av.VideoFrame.from_ndarray(array, format=fmt)
                _encode_frame(out, vstream, frame, i, info.fps)
                for track in tracks:
                    track.mux_until(out, (i + 1) / float(info.fps))
                progress(Progress("assemble", i + 1, len(frames)))
            out.mux(vstream.encode(None))
            for track in tracks:
                track.finish(out)
        finally:
            for track in tracks:
                track.close()
            out.close()
    logger.info("assembled %d frames of %s into %s", len(frames), frames_dir, out_path)
    return out_path
