"""The extract step over many frames: a folder of images or a video stream → aligned face files.

Faces go to ``aligned/<frame stem>_<n>.jpg`` (n = 0 for the largest face). Decoding runs on a thread ahead
of detection and file encoding in a thread pool, so both cores stay busy. A record,
``aligned/extract_log.json``, lists frames with no face, unreadable frames and the frames that got a
debug image, so a manual pass can revisit exactly the frames that need it (``frames_to_revisit``).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from facelab import __version__
from facelab.device import resolve_devices
from facelab.errors import InputError, OutputError, VideoError
from facelab.extract.debug import debug_image_name, write_debug_image
from facelab.extract.extractor import Extractor
from facelab.extract.frames import Frame, count_video_frames, read_ahead, read_image, video_frames
from facelab.extract.options import ExtractSettings
from facelab.io.faceimage import face_file_name, frame_stem_of, list_faces, write_face
from facelab.io.files import write_json_atomic
from facelab.io.frames import list_images
from facelab.io.safe_json import loads_bounded
from facelab.names import is_plain_name
from facelab.progress import Progress, ProgressCallback, no_progress

log = logging.getLogger(__name__)
LOG_NAME = "extract_log.json"
STAGES = ("decode", "detect", "landmarks", "align", "encode")
_TIMING_LOCK = threading.Lock()


@dataclass
class ExtractReport:
    """What an extract run did; ``stage_seconds`` sums the time spent in each stage (across threads)."""

    frames: int = 0
    faces: int = 0
    no_face: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    debug_images: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    frame_names: list[str] = field(default_factory=list)

    def add_time(self, stage: str, seconds: float) -> None:
        with _TIMING_LOCK:  # writer threads report concurrently
            self.stage_seconds[stage] += seconds


def extract_folder(frames_dir: str | Path, aligned_dir: str | Path, *, only: Iterable[str] | None = None,
                   debug_dir: str | Path | None = None, progress: ProgressCallback = no_progress,
                   rectangles: dict[str, list] | None = None, **settings) -> ExtractReport:
    """Extract every image in ``frames_dir`` (or only the named ones) into ``aligned_dir``.

    ``settings``: EXTRACT_OPTIONS values (``ExtractSettings`` fields; the ones not given keep their defaults);
    ``rectangles``: {frame name: [boxes]} for the manual detector.
    """
    frames_dir = Path(frames_dir)
    paths = list_images(frames_dir)
    if only is not None:
        wanted = set(only)
        paths = [p for p in paths if p.name in wanted]
    elif not paths:
        raise InputError("no frame images found", path=frames_dir,
                         fix="extract frames from the video first, or extract straight from the video")
    frames = (read_image(p) for p in paths)
    report = _run(frames, len(paths), Path(aligned_dir), debug_dir, progress, ExtractSettings.of(settings),
                  rectangles, update_log=only is not None)
    if report.frames and len(report.unreadable) == report.frames:
        name, reason = next(iter(report.unreadable.items()))
        raise InputError(f"none of the {report.frames} frame files could be read ({name}: {reason})",
                         path=frames_dir, fix="extract the frames from the video again (`facelab video extract`)"
                                              " or extract straight from the video (--from-video)")
    return report


def extract_video(video: str | Path, aligned_dir: str | Path, *, only: Iterable[str] | None = None,
                  debug_dir: str | Path | None = None, progress: ProgressCallback = no_progress,
                  rectangles: dict[str, list] | None = None, **settings) -> ExtractReport:
    """Extract faces straight from a video file, decoding one frame at a time (memory flat in its length).

    Faces are named after the frame files frame extraction would write (00001.png → 00001_0.jpg);
    ``only`` limits the work to the named frames (the video is still decoded up to the last of them).
    """
    chosen = ExtractSettings.of(settings)
    if only is None:
        return _run(video_frames(video), count_video_frames(video), Path(aligned_dir), debug_dir, progress,
                    chosen, rectangles, update_log=False)
    wanted = set(only)
    return _run(_named(video_frames(video), wanted), len(wanted), Path(aligned_dir), debug_dir, progress, chosen,
                rectangles, update_log=True)


def read_log(aligned_dir: str | Path) -> dict:
    """The last extract run's record in ``aligned_dir``; {} when there is none. InputError naming the file and
    the entry when it is unreadable, corrupt or of the wrong shape: a broken record must not read as "every
    frame has a face"."""
    path = Path(aligned_dir) / LOG_NAME
    try:
        data = loads_bounded(path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise InputError(f"cannot read the extract record ({err.strerror})", path=path) from None
    except ValueError as err:
        raise _bad_log(path, f"is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise _bad_log(path, "is not a JSON object")
    for key, kind, check in _LOG_SCHEMA:
        value = data.get(key, kind())
        if not isinstance(value, kind) or not all(map(check, value.items() if kind is dict else value)):
            raise _bad_log(path, f"has a malformed {key!r} entry")
    return data


def frames_to_revisit(aligned_dir: str | Path, debug_dir: str | Path | None = None) -> list[str]:
    """Frame names a manual pass should revisit: those where no face was found, plus those whose
    aligned_debug image the user deleted (the seed's "re-extract deleted aligned_debug")."""
    record = read_log(aligned_dir)
    names = set(record.get("no_face", []))
    if debug_dir is not None:
        debug_dir = Path(debug_dir)
        names |= {n for n in record.get("debug_images", []) if not (debug_dir / debug_image_name(n)).exists()}
    return sorted(names)


def move_faces_of(aligned_dir: str | Path, trash_dir: str | Path, frame_names: Iterable[str] | None = None) -> int:
    """Move the aligned faces cut from the named frames (all faces when None) into ``trash_dir``; faces are
    never deleted. Returns how many moved."""
    aligned_dir = Path(aligned_dir)
    stems = None if frame_names is None else {Path(n).stem for n in frame_names}
    moved = 0
    for path in list_faces(aligned_dir) if aligned_dir.is_dir() else []:
        if stems is None or frame_stem_of(path) in stems:
            Path(trash_dir).mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), Path(trash_dir) / path.name)
            moved += 1
    return moved


def frames_without_faces(frame_names: Iterable[str], aligned_dir: str | Path) -> list[str]:
    """The named frames with no face file left in ``aligned_dir`` (``<frame stem>_<n>.*``): frames whose faces
    the user moved or deleted, or that were never extracted."""
    aligned_dir = Path(aligned_dir)
    stems = {frame_stem_of(p) for p in list_faces(aligned_dir)} if aligned_dir.is_dir() else set()
    return sorted(n for n in frame_names if Path(n).stem not in stems)


def record_manual_faces(aligned_dir: str | Path, frame_name: str, faces: int, debug_image: bool) -> dict:
    """Update ``extract_log.json`` after ``faces`` faces of one frame were placed by hand: the frame is no longer
    "no face" nor "unreadable", it is listed under ``debug_images`` when its debug image was written, and
    ``manual`` records how many faces the user placed. Other frames' entries are kept. Returns the new record."""
    record = read_log(aligned_dir)
    record["no_face"] = sorted(set(record.get("no_face", [])) - {frame_name})
    record["unreadable"] = {k: v for k, v in record.get("unreadable", {}).items() if k != frame_name}
    debug_images = set(record.get("debug_images", []))
    record["debug_images"] = sorted(debug_images | {frame_name} if debug_image else debug_images)
    record["manual"] = {**record.get("manual", {}), frame_name: int(faces)}
    record.setdefault("tool_version", __version__)
    write_json_atomic(Path(aligned_dir) / LOG_NAME, record)
    return record


# -- the record -----------------------------------------------------------------------------------------------

# (key, JSON type, check of each list item / (name, value) pair) of every entry ``frames_to_revisit`` and
# ``record_manual_faces`` use: frame names are plain names, since they are joined to folder paths.
_LOG_SCHEMA = (
    ("no_face", list, is_plain_name),
    ("debug_images", list, is_plain_name),
    ("unreadable", dict, lambda item: is_plain_name(item[0]) and isinstance(item[1], str)),
    ("manual", dict, lambda item: is_plain_name(item[0]) and type(item[1]) is int and item[1] >= 0),
    ("settings", dict, lambda item: True),
)


def _bad_log(path: Path, problem: str) -> InputError:
    return InputError(f"the extract record {problem}", path=path,
                      fix="move it away and run a full extraction (without --revisit) to rebuild it")


# -- the loop ------------------------------------------------------------------------------------------------


def _named(frames: Iterator[Frame], wanted: set[str]) -> Iterator[Frame]:
    """The frames whose names are in ``wanted``, stopping once all of them came by."""
    left = set(wanted)
    for frame in frames:
        if not left:
            return
        if frame.name in left:
            left.discard(frame.name)
            yield frame


def _timed(frames: Iterator[Frame], report: ExtractReport) -> Iterator[Frame]:
    while True:
        start = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            return
        report.add_time("decode", time.perf_counter() - start)
        yield frame


def _run(frames: Iterator[Frame], total: int | None, aligned_dir: Path, debug_dir, progress: ProgressCallback,
         settings: ExtractSettings, rectangles: dict[str, list] | None, update_log: bool) -> ExtractReport:
    extractors = [Extractor(device=str(d), rectangles=rectangles, **settings.extractor_args())
                  for d in resolve_devices(settings.device)]
    debug_dir = Path(debug_dir) if debug_dir is not None else None
    for folder in (aligned_dir, debug_dir):
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"cannot create the folder ({err.strerror})", path=folder) from None
    old_log = read_log(aligned_dir) if update_log else None  # a corrupt record stops the run before any work
    _remove_leftover_temps(aligned_dir)
    report = ExtractReport()
    start = time.perf_counter()
    try:
        try:
            _extract_all(frames, total, extractors, aligned_dir, debug_dir, progress, report, settings.image_format,
                         settings.jpeg_quality)
        except VideoError as err:  # a video that breaks off: say so, and keep (and record) what was extracted
            _write_log(aligned_dir, report, settings, old_log)
            raise VideoError(f"{err.message}; the {report.faces} faces found before it are kept",
                             path=err.path, fix=err.fix) from None
        for ex in extractors:
            for stage, seconds in ex.timings.items():
                report.add_time(stage, seconds)
        report.seconds = time.perf_counter() - start
        _write_log(aligned_dir, report, settings, old_log)
    except (OSError, OutputError) as err:
        raise _write_failure(err, aligned_dir) from None
    return report


def _extract_all(frames: Iterator[Frame], total: int | None, extractors: list[Extractor], aligned_dir: Path,
                 debug_dir: Path | None, progress: ProgressCallback, report: ExtractReport, image_format: str,
                 quality: int) -> None:
    """Detect, align and write the faces of every frame, filling ``report``; writes run on a thread pool."""
    label = f"extract {aligned_dir.parent.name or aligned_dir}"
    progress(Progress(label, 0, total))
    writers = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="face-writer")
    pending: list[Future] = []
    try:
        results = _detect_all(read_ahead(_timed(iter(frames), report)), extractors)
        for frame, faces in results:
            report.frames += 1
            report.frame_names.append(frame.name)
            if frame.image is None:
                report.unreadable[frame.name] = frame.error
                log.warning("%s: skipped, %s", frame.name, frame.error)
            elif not faces:
                report.no_face.append(frame.name)
            for image, meta in faces:
                path = aligned_dir / face_file_name(frame.name, meta.face_index, f".{image_format}")
                pending.append(writers.submit(_write_face, path, image, meta, quality, report))
            if debug_dir is not None and frame.image is not None:
                report.debug_images.append(frame.name)
                pending.append(writers.submit(_write_debug, debug_dir / debug_image_name(frame.name), frame.image,
                                              [m for _, m in faces], report))
            report.faces += len(faces)
            pending = _drain(pending, keep=4 * (os.cpu_count() or 2))
            progress(Progress(label, report.frames, total))
        _drain(pending, keep=0)
    finally:
        writers.shutdown(wait=True, cancel_futures=True)


def _write_failure(err: OSError | OutputError, aligned_dir: Path) -> OutputError:
    """The one-line error for a write that failed mid-run, saying what was kept (the writes are atomic, so
    every face file there is whole)."""
    reason = err.strerror if isinstance(err, OSError) else err.message
    full = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or os.strerror(errno.ENOSPC) in str(err)
    kept = len(list_faces(aligned_dir)) if aligned_dir.is_dir() else 0
    return OutputError(f"{'the disk is full' if full else f'cannot write ({reason})'}: extraction stopped; the "
                       f"{kept} face files in the folder are whole and kept", path=aligned_dir,
                       fix="free some disk space, then run the extraction again" if full
                       else "check the folder can be written to, then run the extraction again")


# Temp files ``atomic_path`` makes for this step's own files (``.<face or record name>.<8 random chars>.<ext>``);
# a kill during a write leaves them behind.
_OWN_TEMP = re.compile(r"^\.(.+_\d+|extract_log)\.[a-z0-9_]{8}\.(jpg|png|json)$")


def _remove_leftover_temps(aligned_dir: Path) -> None:
    """Delete temp files an interrupted extraction left in ``aligned_dir`` (only those, only there)."""
    for path in aligned_dir.iterdir():
        if _OWN_TEMP.match(path.name) and path.is_file():
            log.info("removing %s, left by an interrupted extraction", path)
            path.unlink(missing_ok=True)


def _detect_all(frames: Iterator[Frame], extractors: list[Extractor]):
    """(frame, faces) pairs; with several devices one worker thread per device, results in frame order."""
    if len(extractors) == 1:
        for frame in frames:
            yield frame, (extractors[0].faces(frame.image, frame.name) if frame.image is not None else [])
        return
    with ThreadPoolExecutor(max_workers=len(extractors), thread_name_prefix="extract-gpu") as pool:
        window: list[tuple[Frame, Future | None]] = []
        for i, frame in enumerate(frames):
            job = pool.submit(extractors[i % len(extractors)].faces, frame.image, frame.name) \
                if frame.image is not None else None
            window.append((frame, job))
            if len(window) >= 2 * len(extractors):
                done, job = window.pop(0)
                yield done, (job.result() if job else [])
        for done, job in window:
            yield done, (job.result() if job else [])


def _drain(pending: list[Future], keep: int) -> list[Future]:
    """Wait for the oldest writes until at most ``keep`` are pending (bounds memory); re-raise their errors."""
    while len(pending) > keep:
        pending.pop(0).result()
    return pending


def _write_face(path: Path, image: np.ndarray, meta, quality: int, report: ExtractReport) -> None:
    start = time.perf_counter()
    write_face(path, image, meta, quality=quality)
    report.add_time("encode", time.perf_counter() - start)


def _write_debug(path: Path, frame: np.ndarray, metas, report: ExtractReport) -> None:
    start = time.perf_counter()
    write_debug_image(path, frame, metas)
    report.add_time("encode", time.perf_counter() - start)


def _write_log(aligned_dir: Path, report: ExtractReport, settings: ExtractSettings, old: dict | None) -> None:
    """Write the run's record; a partial re-run (``old``: the record before it) replaces only the entries of its
    own frames."""
    record = {"no_face": report.no_face, "unreadable": report.unreadable, "debug_images": report.debug_images}
    if old is not None:
        done = set(report.frame_names)
        record["no_face"] = sorted(set(old.get("no_face", [])) - done | set(report.no_face))
        record["unreadable"] = {k: v for k, v in old.get("unreadable", {}).items() if k not in done}
        record["unreadable"].update(report.unreadable)
        record["debug_images"] = sorted(set(old.get("debug_images", [])) | set(report.debug_images))
        record["manual"] = {k: v for k, v in old.get("manual", {}).items() if k not in done}
    record.update({"tool_version": __version__, "settings": settings.extractor_args(),
                   "frames": report.frames, "faces": report.faces})
    write_json_atomic(aligned_dir / LOG_NAME, record)
