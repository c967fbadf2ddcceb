"""The extract step over many frames: a folder of images or a video stream → aligned face files.

Faces go to ``aligned/<frame stem>_<n>.jpg`` (n = 0 for the largest face). Decoding runs on a thread ahead
of detection and file encoding in a thread pool, so both cores stay busy. A record,
``aligned/extract_log.json``, lists frames with no face, unreadable frames and the frames that got a
debug image, so a manual pass can revisit exactly the frames that need it (``frames_to_revisit``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from facelab import __version__
from facelab.device import resolve_devices
from facelab.errors import InputError, OutputError
from facelab.extract.debug import draw_debug
from facelab.extract.extractor import Extractor
from facelab.extract.frames import Frame, count_video_frames, list_frames, read_ahead, read_image, video_frames
from facelab.io.faceimage import list_faces, write_face
from facelab.io.files import write_bytes_atomic, write_json_atomic
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
                   **settings) -> ExtractReport:
    """Extract every image in ``frames_dir`` (or only the named ones) into ``aligned_dir``.

    ``settings``: the EXTRACT_OPTIONS values (detector, face_type, image_size, image_format, jpeg_quality,
    max_faces, min_face_size, rotate_retry, device) plus ``rectangles`` for the manual detector.
    """
    frames_dir = Path(frames_dir)
    paths = list_frames(frames_dir)
    if only is not None:
        wanted = set(only)
        paths = [p for p in paths if p.name in wanted]
    elif not paths:
        raise InputError("no frame images found", path=frames_dir,
                         fix="extract frames from the video first, or extract straight from the video")
    frames = (read_image(p) for p in paths)
    return _run(frames, len(paths), Path(aligned_dir), debug_dir, progress, settings, update_log=only is not None)


def extract_video(video: str | Path, aligned_dir: str | Path, *, only: Iterable[str] | None = None,
                  debug_dir: str | Path | None = None, progress: ProgressCallback = no_progress,
                  **settings) -> ExtractReport:
    """Extract faces straight from a video file, decoding one frame at a time (memory flat in its length).

    Faces are named after the frame files frame extraction would write (00001.png → 00001_0.jpg);
    ``only`` limits the work to the named frames (the video is still decoded up to the last of them).
    """
    if only is None:
        return _run(video_frames(video), count_video_frames(video), Path(aligned_dir), debug_dir, progress,
                    settings, update_log=False)
    wanted = set(only)
    return _run(_named(video_frames(video), wanted), len(wanted), Path(aligned_dir), debug_dir, progress, settings,
                update_log=True)


def read_log(aligned_dir: str | Path) -> dict:
    """The last extract run's record in ``aligned_dir`` (empty when there is none or it is unreadable)."""
    path = Path(aligned_dir) / LOG_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def frames_to_revisit(aligned_dir: str | Path, debug_dir: str | Path | None = None) -> list[str]:
    """Frame names a manual pass should revisit: those where no face was found, plus those whose
    aligned_debug image the user deleted (the seed's "re-extract deleted aligned_debug")."""
    record = read_log(aligned_dir)
    names = set(record.get("no_face", []))
    if debug_dir is not None:
        debug_dir = Path(debug_dir)
        names |= {n for n in record.get("debug_images", []) if not (debug_dir / _debug_name(n)).exists()}
    return sorted(names)


def move_faces_of(aligned_dir: str | Path, trash_dir: str | Path, frame_names: Iterable[str] | None = None) -> int:
    """Move the aligned faces cut from the named frames (all faces when None) into ``trash_dir``; faces are
    never deleted. Returns how many moved."""
    aligned_dir = Path(aligned_dir)
    stems = None if frame_names is None else {Path(n).stem for n in frame_names}
    moved = 0
    for path in list_faces(aligned_dir) if aligned_dir.is_dir() else []:
        if stems is None or path.stem.rsplit("_", 1)[0] in stems:
            Path(trash_dir).mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), Path(trash_dir) / path.name)
            moved += 1
    return moved


def frames_without_faces(frame_names: Iterable[str], aligned_dir: str | Path) -> list[str]:
    """The named frames with no face file left in ``aligned_dir`` (``<frame stem>_<n>.*``): frames whose faces
    the user moved or deleted, or that were never extracted."""
    aligned_dir = Path(aligned_dir)
    stems = {p.stem.rsplit("_", 1)[0] for p in list_faces(aligned_dir)} if aligned_dir.is_dir() else set()
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


def _debug_name(frame_name: str) -> str:
    return Path(frame_name).stem + ".jpg"


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
         settings: dict, update_log: bool) -> ExtractReport:
    settings = dict(settings)
    image_format = settings.pop("image_format", "jpg")
    quality = int(settings.pop("jpeg_quality", 95))
    devices = resolve_devices(settings.pop("device", "cpu"))
    settings.pop("debug", None)
    extractors = [Extractor(device=str(d), **settings) for d in devices]
    debug_dir = Path(debug_dir) if debug_dir is not None else None
    for folder in (aligned_dir, debug_dir):
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"cannot create the folder ({err.strerror})", path=folder) from None
    report = ExtractReport()
    start = time.perf_counter()
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
                path = aligned_dir / f"{Path(frame.name).stem}_{meta.face_index}.{image_format}"
                pending.append(writers.submit(_write_face, path, image, meta, quality, report))
            if debug_dir is not None and frame.image is not None:
                report.debug_images.append(frame.name)
                pending.append(writers.submit(_write_debug, debug_dir / _debug_name(frame.name), frame.image,
                                              [m for _, m in faces], report))
            report.faces += len(faces)
            pending = _drain(pending, keep=4 * (os.cpu_count() or 2))
            progress(Progress(label, report.frames, total))
        _drain(pending, keep=0)
    finally:
        writers.shutdown(wait=True, cancel_futures=True)
    for ex in extractors:
        for stage, seconds in ex.timings.items():
            report.add_time(stage, seconds)
    report.seconds = time.perf_counter() - start
    _write_log(aligned_dir, report, settings, update_log)
    return report


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
    ok, buf = cv2.imencode(".jpg", draw_debug(frame, metas), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OutputError("could not encode the debug image", path=path)
    write_bytes_atomic(path, buf.tobytes())
    report.add_time("encode", time.perf_counter() - start)


def _write_log(aligned_dir: Path, report: ExtractReport, settings: dict, update: bool) -> None:
    """Write the run's record; a partial re-run (``update``) replaces only the entries of its own frames."""
    record = {"no_face": report.no_face, "unreadable": report.unreadable, "debug_images": report.debug_images}
    if update:
        old = read_log(aligned_dir)
        done = set(report.frame_names)
        record["no_face"] = sorted(set(old.get("no_face", [])) - done | set(report.no_face))
        record["unreadable"] = {k: v for k, v in old.get("unreadable", {}).items() if k not in done}
        record["unreadable"].update(report.unreadable)
        record["debug_images"] = sorted(set(old.get("debug_images", [])) | set(report.debug_images))
    record.update({"tool_version": __version__, "settings": {k: v for k, v in settings.items() if k != "rectangles"},
                   "frames": report.frames, "faces": report.faces})
    write_json_atomic(aligned_dir / LOG_NAME, record)
