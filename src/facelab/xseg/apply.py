"""Whole facesets and XSeg: ``apply_folder`` writes each face's predicted mask into its own metadata,
``remove_folder`` takes them out, ``fetch_labelled`` copies the faces that carry polygons to another folder (to
move labels between projects). Each face file is replaced atomically with its pixels byte-exact
(``io.faceimage.write_meta``), so a kill mid-folder leaves every face either as it was or fully updated.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facelab.errors import InputError, MetadataError, OutputError
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.xseg.data import is_labelled
from facelab.xseg.segmenter import Segmenter
from facelab.xseg.stored import KEY, encode_mask

log = logging.getLogger(__name__)


@dataclass
class FolderReport:
    """How many faces were changed (or copied), left as they were, and skipped with why."""

    done: int = 0
    kept: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def apply_folder(folder: Path, segmenter: Segmenter, batch_size: int = 16,
                 progress: ProgressCallback = no_progress) -> FolderReport:
    """Predict every face's mask in ``folder`` and store it in the face's metadata (replacing an older one)."""
    faces = list_faces(folder)
    report = FolderReport()
    progress(Progress("xseg apply", 0, len(faces)))
    for start in range(0, len(faces), batch_size):
        loaded = []
        for path in faces[start : start + batch_size]:
            try:
                loaded.append((path, *read_face(path)))
            except (MetadataError, InputError) as err:
                report.skipped.append((path, err.message))
        by_size: dict[tuple, list] = {}
        for item in loaded:
            by_size.setdefault(item[1].shape, []).append(item)
        for group in by_size.values():
            masks = segmenter.predict(np.stack([image for _, image, _ in group]))
            for (path, _, meta), mask in zip(group, masks):
                meta.extra[KEY] = encode_mask(mask, segmenter.iteration)
                write_meta(path, meta)
                report.done += 1
        progress(Progress("xseg apply", min(start + batch_size, len(faces)), len(faces)))
    return report


def remove_folder(folder: Path, progress: ProgressCallback = no_progress) -> FolderReport:
    """Take the applied XSeg masks out of every face's metadata in ``folder`` (pixels untouched)."""
    faces = list_faces(folder)
    report = FolderReport()
    for n, path in enumerate(faces, 1):
        try:
            meta = read_meta(path)
        except (MetadataError, InputError) as err:
            report.skipped.append((path, err.message))
            continue
        if meta.extra.pop(KEY, None) is None:
            report.kept += 1
        else:
            write_meta(path, meta)
            report.done += 1
        progress(Progress("xseg remove", n, len(faces)))
    return report


def fetch_labelled(folder: Path, output: Path, progress: ProgressCallback = no_progress) -> FolderReport:
    """Copy the faces of ``folder`` that carry mask polygons into ``output`` (made when missing). Never
    overwrites: a name already in ``output`` is kept and counted in ``kept``."""
    folder, output = Path(folder), Path(output)
    if output.resolve() == folder.resolve():
        raise OutputError("the output folder is the faceset itself", path=output, fix="choose another folder")
    faces = list_faces(folder)
    report = FolderReport()
    for n, path in enumerate(faces, 1):
        try:
            labelled = is_labelled(read_meta(path))
        except (MetadataError, InputError) as err:
            report.skipped.append((path, err.message))
            continue
        if labelled:
            copied = _copy_no_overwrite(path, output / path.name)
            report.done += copied
            report.kept += not copied
        progress(Progress("xseg fetch", n, len(faces)))
    return report


def _copy_no_overwrite(source: Path, target: Path) -> bool:
    """Copy to a temp file beside ``target``, then hard-link it there: the link fails when ``target`` exists
    (even one made meanwhile), so nothing is ever replaced and no half-copied face appears. False when
    ``target`` was there."""
    if target.exists():
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        os.close(fd)
    except OSError as err:
        raise OutputError(f"cannot write here ({err.strerror})", path=target.parent,
                          fix="choose a folder you can write to") from None
    try:
        shutil.copyfile(source, tmp)
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True
