"""Faceset housekeeping: original names back, landmark debug pictures, PNG → JPG."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import OutputError
from facelab.faceset import rename
from facelab.faceset.sort import faceset_files
from facelab.io.faceimage import list_faces, read_face, read_meta, write_face
from facelab.io.files import write_bytes_atomic
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta

log = logging.getLogger(__name__)

# JPEG comment that marks a picture written by `debug_landmarks`: only such files are ever removed.
DEBUG_TAG = b"facelab landmarks debug picture"


def original_name(meta: FaceMeta, suffix: str) -> str:
    """``<frame>_<n><suffix>``: the name extraction gave the face (source frame's stem, face number)."""
    return f"{Path(meta.source_filename).stem}_{meta.face_index}{suffix.lower()}"


def recover_names(folder: str | Path, progress: ProgressCallback = no_progress) -> int:
    """Rename every face back to ``<frame>_<n>`` from its metadata; returns how many changed name.

    Faces without a source file name keep theirs; two faces claiming one name get ``_1``, ``_2``... suffixes.
    """
    folder = Path(folder)
    rename.finish_pending(folder)
    paths = faceset_files(folder)
    wanted: dict[str, Path] = {}
    for done, path in enumerate(paths, 1):
        meta = read_meta(path)
        name = original_name(meta, path.suffix) if meta.source_filename else path.name
        stem, n = Path(name).stem, 0
        while name in wanted:
            n += 1
            name = f"{stem}_{n}{path.suffix.lower()}"
        wanted[name] = path
        progress(Progress("Reading metadata", done, len(paths)))
    moves = [(path, name) for name, path in wanted.items() if path.name != name]
    rename.rename_all(folder, [p for p, _ in moves], [n for _, n in moves], progress)
    return len(moves)


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 BGR with the 68 points and the face hull drawn on it."""
    out = image.copy()
    scale = max(1, round(image.shape[0] / 256))
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.polylines(out, [hull], True, (255, 128, 0), scale, cv2.LINE_AA)
    for x, y in np.round(landmarks).astype(int):
        cv2.circle(out, (int(x), int(y)), scale + 1, (0, 255, 0), -1, cv2.LINE_AA)
    return out


def debug_landmarks(folder: str | Path, progress: ProgressCallback = no_progress) -> list[Path]:
    """Write ``<name>_debug.jpg`` beside each face with its landmarks drawn; returns the files written.

    They carry no face metadata (so no step takes them for faces) and a JPEG comment marking them as ours.
    """
    folder = Path(folder)
    paths = faceset_files(folder)
    written = []
    for done, path in enumerate(paths, 1):
        image, meta = read_face(path)
        landmarks = meta.landmarks * (image.shape[1] / meta.image_size)
        ok, buf = cv2.imencode(".jpg", draw_landmarks(image, landmarks), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise OutputError("could not encode the debug picture", path=path)
        target = path.with_name(f"{path.stem}_debug.jpg")
        write_bytes_atomic(target, _with_comment(buf.tobytes(), DEBUG_TAG))
        written.append(target)
        progress(Progress("Drawing landmarks", done, len(paths)))
    return written


def remove_debug(folder: str | Path) -> list[Path]:
    """Delete the ``*_debug.jpg`` pictures ``debug_landmarks`` wrote (and only those); returns them."""
    removed = []
    for path in sorted(Path(folder).glob("*_debug.jpg")):
        if _has_comment(path.read_bytes(), DEBUG_TAG):
            path.unlink()
            removed.append(path)
    return removed


def png_to_jpg(folder: str | Path, quality: int = 95, progress: ProgressCallback = no_progress) -> list[Path]:
    """Convert every PNG face to a JPG face with the same metadata; the PNGs move to ``<folder>_trash``.

    OutputError before anything is written when a ``<name>.jpg`` already exists beside a ``<name>.png``.
    Returns the JPG files written.
    """
    folder = Path(folder)
    pngs = [p for p in faceset_files(folder) if p.suffix.lower() == ".png"]
    clashes = [p.with_suffix(".jpg").name for p in pngs if p.with_suffix(".jpg").exists()]
    if clashes:
        raise OutputError(f"{clashes[0]} already exists ({len(clashes)} clash(es))", path=folder,
                          fix="rename or move the JPG files that share a name with a PNG face")
    written = []
    for done, path in enumerate(pngs, 1):
        image, meta = read_face(path)
        target = path.with_suffix(".jpg")
        write_face(target, image, meta, quality=quality)
        rename.move_to_trash(folder, [path])
        written.append(target)
        progress(Progress("Converting to JPG", done, len(pngs)))
    return written


def _with_comment(jpeg: bytes, text: bytes) -> bytes:
    """Insert a COM segment right after SOI."""
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def _has_comment(jpeg: bytes, text: bytes) -> bool:
    return jpeg[:2] == b"\xff\xd8" and jpeg[2:4] == b"\xff\xfe" and jpeg[6:6 + len(text)] == text
