"""Aligned-face folders of a workspace, reading their faces one at a time (a bad face is flagged, never the end of
the listing), and moving faces between them without ever overwriting one."""

from __future__ import annotations

import math
import os
from pathlib import Path

from facelab.errors import FacelabError, InputError, OutputError
from facelab.faceset import rename
from facelab.io.faceimage import FACE_SUFFIXES, list_faces, read_meta
from facelab.types import FaceMeta

SEARCH_DEPTH = 4  # data_src/aligned is at depth 2; leave room for the user's own sub-folders
SEARCH_FOLDERS = 5000  # at most this many folders are looked into, so a huge workspace still answers quickly
FACES_TRIED = 8  # a folder holds faces when one of its first this many files carries facelab metadata
FIRST = ("data_src/aligned", "data_dst/aligned")


def read_shown_meta(path: Path) -> tuple[FaceMeta | None, str | None]:
    """(metadata, None) of a face a page may show, or (None, why not): a link, an unreadable file, missing or
    invalid metadata, or pose/score values that are not finite numbers. One bad face never stops a listing."""
    if path.is_symlink():
        return None, "a link, not a face file: facelab does not follow links in a faceset"
    try:
        meta = read_meta(path)
    except (FacelabError, OSError) as err:
        return None, getattr(err, "message", None) or str(err)
    shown = (meta.yaw, meta.pitch, meta.roll, meta.score)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in shown):
        return None, "invalid facelab metadata: pose and score must be finite numbers — re-extract this face"
    return meta, None


def holds_faces(folder: Path) -> bool:
    """Whether ``folder`` holds aligned faces: one of its first FACES_TRIED face images carries facelab metadata
    (frames, merged frames and ``aligned_debug`` pictures do not; one broken face does not hide the folder)."""
    try:
        faces = list_faces(folder)[:FACES_TRIED]
    except (FacelabError, OSError):
        return False
    return any(read_shown_meta(p)[0] is not None for p in faces)


def is_faceset_folder(folder: Path) -> bool:
    """Whether faces may be moved out of or rewritten in ``folder``: it holds aligned faces, or it is an aligned
    folder whose faces all went to its trash. Frame folders (``data_dst/``) are neither."""
    return holds_faces(folder) or holds_faces(rename.trash_dir(folder))


def checked_face(root: Path, path: Path) -> Path:
    """``path`` (inside ``root``) when it is a face file of a faceset folder, a plain file and not a link;
    InputError otherwise. What the mask editor may rewrite or move (never a dst frame)."""
    if path.suffix.lower() not in FACE_SUFFIXES or path.is_symlink() or not path.is_file():
        raise InputError("no such face file", path=path.name, fix="reload the folder; the face may have moved")
    if path.parent == root.resolve() or not is_faceset_folder(path.parent):
        raise InputError("not a face of a faceset folder (only aligned faces are moved or changed here)",
                         path=path.relative_to(root.resolve()).as_posix(), fix="pick a face from the folder list")
    return path


def face_folders(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """Folders under ``root`` (up to ``depth`` levels, hidden ones and ``*_trash`` left out) that hold aligned
    faces; data_src/aligned and data_dst/aligned first, then the rest by path."""
    root = root.resolve()
    found, looked = [], 0
    for current, dirs, _files in os.walk(root):
        here = Path(current)
        level = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith("_trash") and level < depth)
        looked += 1
        if looked > SEARCH_FOLDERS:
            break
        if here != root and holds_faces(here):
            found.append(here)
    first = [root / rel for rel in FIRST]
    return [p for p in first if p in found] + sorted(p for p in found if p not in first)


def move_no_overwrite(src: Path, target: Path) -> Path:
    """Move the file ``src`` to ``target``; OutputError (nothing moved) when ``target`` exists. A hard link fails on
    an existing name, so a file appearing meanwhile is never replaced (a plain rename would replace it)."""
    clash = OutputError(f"{target.parent.name}/ already holds a file named {target.name}", path=target.parent,
                        fix="rename or move that file first; nothing is overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, target)
    except FileExistsError:
        raise clash from None
    except OSError:  # a filesystem without hard links (e.g. exFAT): checked rename
        if target.exists():
            raise clash from None
        os.rename(src, target)
    else:
        src.unlink()
    return target
