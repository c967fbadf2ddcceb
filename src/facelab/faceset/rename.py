"""Renaming a faceset in place without ever losing or overwriting a face, and the trash folder.

A rename of many files where new names reuse old ones (``00007.jpg`` → ``00003.jpg``) goes in two phases:

1. every file moves to a unique temporary name inside the folder, ``_facelab_tmp_<token>_<i>.<ext>``;
2. every temporary file moves to its final name.

The plan is first written, atomically, to a journal (``.facelab-rename.json``) with the phase reached.
If the process dies, the faces are all still there under their old, temporary or new name, and
``finish_pending`` (run by every command that renames) completes the plan from the journal.
Nothing is ever deleted: discarded faces move to ``<folder>_trash/`` beside the folder.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Sequence

from facelab.errors import OutputError, WorkspaceError
from facelab.io.files import write_json_atomic
from facelab.names import is_plain_name
from facelab.progress import Progress, ProgressCallback, no_progress

log = logging.getLogger(__name__)

JOURNAL_NAME = ".facelab-rename.json"
_TMP_PREFIX = "_facelab_tmp_"


def trash_dir(folder: str | Path) -> Path:
    """``<folder>_trash`` beside ``folder`` (DeepFaceLab's ``aligned_trash``)."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}_trash"


def move_to_trash(folder: str | Path, files: Sequence[Path], progress: ProgressCallback = no_progress) -> list[Path]:
    """Move ``files`` into ``trash_dir(folder)``; a name already in the trash gets a ``_1``, ``_2``… suffix.

    Returns the new paths. A move is one rename, so a crash leaves each face in one place or the other.
    """
    trash = trash_dir(folder)
    if not files:
        return []
    try:
        trash.mkdir(exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the trash folder ({err.strerror})", path=trash,
                          fix="check the folder's permissions") from None
    moved = []
    for done, src in enumerate(files, 1):
        target = _free_name(trash / src.name)
        _rename(src, target)
        moved.append(target)
        progress(Progress("Moving to trash", done, len(files)))
    return moved


def rename_all(folder: str | Path, sources: Sequence[Path], targets: Sequence[str],
               progress: ProgressCallback = no_progress) -> None:
    """Rename ``sources`` (files in ``folder``) to the file names ``targets``, crash-safe (see module doc).

    A target name held by a file outside ``sources`` is never overwritten: OutputError before anything moves.
    """
    folder = Path(folder)
    if len(sources) != len(targets):
        raise ValueError("sources and targets differ in length")
    if len(set(targets)) != len(targets):
        raise ValueError("target names are not unique")
    if not all(map(is_plain_name, targets)):
        raise ValueError("target names must be plain file names")
    finish_pending(folder)
    moving = {Path(s).name for s in sources}
    for name in targets:
        if name not in moving and (folder / name).exists():
            raise OutputError(f"{name} is in the way of the new names", path=folder,
                              fix="move that file out of the faceset folder and run again")
    token = uuid.uuid4().hex[:8]
    moves = [[Path(s).name, f"{_TMP_PREFIX}{token}_{i:06d}{Path(s).suffix}", t]
             for i, (s, t) in enumerate(zip(sources, targets))]
    journal = folder / JOURNAL_NAME
    write_json_atomic(journal, {"phase": 1, "moves": moves})
    _run(folder, {"phase": 1, "moves": moves}, progress)


def finish_pending(folder: str | Path, progress: ProgressCallback = no_progress) -> bool:
    """Complete a rename interrupted by a crash, if its journal is there. Returns whether there was one.

    The journal may come with a faceset from someone else: an entry whose names are not plain names of this
    folder (``../x``, ``/etc/x``) or whose middle name is not one of our temporary names is skipped with a
    warning, never followed.
    """
    folder = Path(folder)
    journal = folder / JOURNAL_NAME
    if not journal.exists():
        return False
    try:
        plan = json.loads(journal.read_text())
        entries, phase = plan["moves"], plan["phase"]
        if not isinstance(entries, list) or phase not in (1, 2) or isinstance(phase, bool):
            raise ValueError("no list of moves or no phase 1 or 2")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise WorkspaceError(f"unreadable rename journal ({err})", path=journal,
                             fix="the faces are all in the folder under old, _facelab_tmp_ or new names; "
                                 "run `facelab faceset recover-names` after removing the journal") from None
    log.warning("%s: finishing a rename that was interrupted", folder)
    _run(folder, {"phase": phase, "moves": _safe_moves(journal, entries)}, progress)
    return True


def _safe_moves(journal: Path, entries: list) -> list[tuple[str, str, str]]:
    """The journal's (old, temporary, new) entries that stay inside the folder and clash with no other entry."""
    moves, seen = [], set()
    for entry in entries:
        ok = (isinstance(entry, list) and len(entry) == 3 and all(map(is_plain_name, entry))
              and entry[1].startswith(_TMP_PREFIX) and entry[1] not in (entry[0], entry[2])
              and not {entry[1], entry[2]} & seen)
        if not ok:
            log.warning("%s: skipped the entry %.200r: not a rename inside this folder", journal, entry)
            continue
        seen.update(entry[1:])
        moves.append(tuple(entry))
    return moves


def _run(folder: Path, plan: dict, progress: ProgressCallback) -> None:
    moves, total = plan["moves"], 2 * len(plan["moves"])
    journal = folder / JOURNAL_NAME
    if plan["phase"] == 1:
        for done, (old, tmp, _new) in enumerate(moves, 1):
            # Resuming: a face already at its temporary name has made this step.
            if (folder / old).exists() and not (folder / tmp).exists():
                _rename(folder / old, folder / tmp)
            elif not (folder / tmp).exists():
                log.warning("%s: %s vanished before it was renamed; skipped", folder, old)
            progress(Progress("Renaming", done, total))
        write_json_atomic(journal, {"phase": 2, "moves": [list(m) for m in moves]})
    for done, (_old, tmp, new) in enumerate(moves, len(moves) + 1):
        if (folder / tmp).exists():
            if (folder / new).exists():
                raise OutputError(f"{new} appeared during the rename", path=folder,
                                  fix=f"move it away; {tmp} holds the face meant to get that name")
            _rename(folder / tmp, folder / new)
        progress(Progress("Renaming", done, total))
    journal.unlink()


def _rename(src: Path, dst: Path) -> None:
    try:
        os.rename(src, dst)
    except OSError as err:
        raise OutputError(f"cannot rename to {dst.name} ({err.strerror})", path=src,
                          fix="check the folder's permissions and free space") from None


def _free_name(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate
