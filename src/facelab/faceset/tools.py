"""Faceset housekeeping: original names back, landmark debug pictures, PNG → JPG."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

import cv2
import numpy as np

from facelab.errors import OutputError
from facelab.faceset import rename
from facelab.faceset.sort import BAD_FACE, warn_skipped
from facelab.io.faceimage import face_file_name, list_faces, read_face, read_meta, write_face
from facelab.io.files import write_bytes_atomic
from facelab.names import is_plain_name
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta

log = logging.getLogger(__name__)

T = TypeVar("T")

# JPEG comment that marks a picture written by `debug_landmarks`: only such files are ever removed.
DEBUG_TAG = b"facelab landmarks debug picture"


def original_name(meta: FaceMeta, suffix: str) -> str | None:
    """``<frame>_<n><suffix>``: the name extraction gave the face (source frame's stem, face number).

    None when the metadata gives no plain file name (no source name, or one with a folder in it, or a face
    number like ``/../x``): metadata can come from anyone, and a name made from it must not leave the folder.
    """
    if not is_plain_name(meta.source_filename):
        return None
    name = face_file_name(meta.source_filename, meta.face_index, suffix.lower())
    return name if is_plain_name(name) else None


def recover_names(folder: str | Path, progress: ProgressCallback = no_progress) -> int:
    """Rename every face back to ``<frame>_<n>`` from its metadata; returns how many changed name.

    Faces whose metadata gives no plain original name keep theirs (with a warning when the metadata has a
    source file name), and so do faces whose metadata cannot be read (skipped with a warning); two faces
    claiming one name get ``_1``, ``_2``... suffixes.
    """
    folder = Path(folder)
    rename.finish_pending(folder)
    paths = list_faces(folder)
    originals: dict[Path, str] = {}
    for done, path in enumerate(paths, 1):
        meta = _read_or_skip(read_meta, path)
        name = original_name(meta, path.suffix) if meta is not None else None
        if name is not None:
            originals[path] = name
        elif meta is not None and meta.source_filename:
            log.warning("%s: source_filename %.80r / face_index %.80r give no plain file name; name kept",
                        path, meta.source_filename, meta.face_index)
        progress(Progress("Reading metadata", done, len(paths)))
    # Faces that keep their name hold it first, so no other face is given it.
    wanted: dict[str, Path] = {p.name: p for p in paths if p not in originals}
    for path, name in originals.items():
        stem, n = Path(name).stem, 0
        while name in wanted:
            n += 1
            name = f"{stem}_{n}{path.suffix.lower()}"
        wanted[name] = path
    moves = [(path, name) for name, path in wanted.items() if path.name != name]
    rename.rename_all(folder, [p for p, _ in moves], [n for _, n in moves], progress)
    return len(moves)


def _read_or_skip(read: Callable[[Path], T], path: Path) -> T | None:
    """``read(path)``, or None with a warning naming the file and the reason when the face's metadata or pixels
    are bad: housekeeping goes on over the other faces and leaves that one as it is."""
    try:
        return read(path)
    except BAD_FACE as err:
        warn_skipped(path, err)
        return None


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

    They carry no face metadata (so no step takes them for faces) and a JPEG comment marking them as ours; a
    ``<name>_debug.jpg`` of the user's (without that comment) is never written over: that face is skipped.
    """
    paths = []
    for path in list_faces(folder):
        target = _debug_path(path)
        if (target.exists() or target.is_symlink()) and not _is_ours(target):
            log.warning("%s is not a picture facelab drew: left as it is, no debug picture for %s", target, path.name)
        else:
            paths.append(path)
    written = []
    for done, path in enumerate(paths, 1):
        target = _debug_path(path)
        face = _read_or_skip(read_face, path)
        if face is not None:
            image, meta = face
            landmarks = meta.landmarks * (image.shape[1] / meta.image_size)
            ok, buf = cv2.imencode(".jpg", draw_landmarks(image, landmarks), [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise OutputError("could not encode the debug picture", path=path)
            write_bytes_atomic(target, _with_comment(buf.tobytes(), DEBUG_TAG))
            written.append(target)
        progress(Progress("Drawing landmarks", done, len(paths)))
    return written


def remove_debug(folder: str | Path) -> list[Path]:
    """Delete the ``*_debug.jpg`` pictures ``debug_landmarks`` wrote (and only those); returns them."""
    removed = []
    for path in sorted(Path(folder).glob("*_debug.jpg")):
        if _is_ours(path):
            path.unlink()
            removed.append(path)
    return removed


def png_to_jpg(folder: str | Path, quality: int = 95, progress: ProgressCallback = no_progress) -> list[Path]:
    """Convert every PNG face to a JPG face with the same metadata; the PNGs move to ``<folder>_trash``.

    OutputError before anything is written when a ``<name>.jpg`` already exists beside a ``<name>.png``.
    Returns the JPG files written.
    """
    folder = Path(folder)
    pngs = [p for p in list_faces(folder) if p.suffix.lower() == ".png"]
    clashes = [p.with_suffix(".jpg").name for p in pngs if p.with_suffix(".jpg").exists()]
    if clashes:
        raise OutputError(f"{clashes[0]} already exists ({len(clashes)} clash(es))", path=folder,
                          fix="rename or move the JPG files that share a name with a PNG face")
    written = []
    for done, path in enumerate(pngs, 1):
        face = _read_or_skip(read_face, path)
        if face is not None:
            target = path.with_suffix(".jpg")
            write_face(target, *face, quality=quality)
            rename.move_to_trash(folder, [path])
            written.append(target)
        progress(Progress("Converting to JPG", done, len(pngs)))
    return written


def _with_comment(jpeg: bytes, text: bytes) -> bytes:
    """Insert a COM segment right after SOI."""
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def _debug_path(face: Path) -> Path:
    return face.with_name(f"{face.stem}_debug.jpg")


def _is_ours(path: Path) -> bool:
    """Whether ``path`` is a plain file ``debug_landmarks`` wrote (a link is never ours, whatever it points at)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return _has_comment(f.read(6 + len(DEBUG_TAG)), DEBUG_TAG)


def _has_comment(jpeg: bytes, text: bytes) -> bool:
    return jpeg[:2] == b"\xff\xd8" and jpeg[2:4] == b"\xff\xfe" and jpeg[6:6 + len(text)] == text
