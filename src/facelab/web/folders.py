"""Aligned-face folders of a workspace, and moving faces between them without ever overwriting one."""

from __future__ import annotations

import os
from pathlib import Path

from facelab.errors import FacelabError, OutputError
from facelab.io.faceimage import list_faces, read_meta

SEARCH_DEPTH = 4  # data_src/aligned is at depth 2; leave room for the user's own sub-folders
SEARCH_FOLDERS = 5000  # at most this many folders are looked into, so a huge workspace still answers quickly
FIRST = ("data_src/aligned", "data_dst/aligned")


def holds_faces(folder: Path) -> bool:
    """Whether ``folder`` holds aligned faces: its first face image carries facelab metadata (frames, merged
    frames and ``aligned_debug`` pictures do not)."""
    try:
        first = next(iter(list_faces(folder)), None)
        return first is not None and read_meta(first) is not None
    except (FacelabError, OSError):
        return False


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
