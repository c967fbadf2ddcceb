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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facelab.errors import InputError, MetadataError, OutputError
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.io.files import fsync_folder
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta
from facelab.xseg.data import is_labelled
from facelab.xseg.segmenter import Segmenter
from facelab.xseg.stored import KEY, encode_mask

log = logging.getLogger(__name__)
IO_THREADS = 8  # fsync mostly waits on the disk: with several in flight the filesystem commits them together


@dataclass
class FolderReport:
    """How many faces were changed (or copied), left as they were, and skipped with why."""

    done: int = 0
    kept: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def apply_folder(folder: Path, segmenter: Segmenter, batch_size: int = 16,
                 progress: ProgressCallback = no_progress) -> FolderReport:
    """Predict every face's mask in ``folder`` and store it in the face's metadata (replacing an older one).

    A pipeline: IO_THREADS threads read and decode the next batch and write the last one while the net runs on
    this one. Each face is replaced atomically (temp file, fsync, rename) and the folder is fsynced once per
    batch, so every face reported done is on disk and a kill at any moment leaves no half-written face.
    """
    folder = Path(folder)
    faces = list_faces(folder)
    report = FolderReport()
    progress(Progress("xseg apply", 0, len(faces)))
    batches = [faces[start : start + batch_size] for start in range(0, len(faces), batch_size)]
    with ThreadPoolExecutor(IO_THREADS, thread_name_prefix="xseg-io") as pool:
        reading = [pool.submit(read_face, path) for path in batches[0]] if batches else []
        writing: list[tuple[Path, Future]] = []
        for n, batch in enumerate(batches):
            loaded = _collect_reads(batch, reading, report)
            reading = [pool.submit(read_face, path) for path in batches[n + 1]] if n + 1 < len(batches) else []
            written = []
            for group in _by_size(loaded):
                masks = segmenter.predict(np.stack([image for _, image, _ in group]))
                written += [(path, pool.submit(_store_mask, path, meta, mask, segmenter.iteration))
                            for (path, _, meta), mask in zip(group, masks)]
            _finish_writes(writing, folder, report)  # the previous batch's, written while this one was predicted
            progress(Progress("xseg apply", min(n * batch_size, len(faces)), len(faces)))
            writing = written
        _finish_writes(writing, folder, report)
    progress(Progress("xseg apply", len(faces), len(faces)))
    return report


def _collect_reads(paths: list[Path], reading: list[Future], report: FolderReport) -> list[tuple]:
    """(path, image, meta) of each face read; unreadable ones go to ``report.skipped``."""
    loaded = []
    for path, future in zip(paths, reading):
        try:
            loaded.append((path, *future.result()))
        except (MetadataError, InputError) as err:
            report.skipped.append((path, err.message))
    return loaded


def _by_size(loaded: list[tuple]) -> list[list[tuple]]:
    """The faces grouped by image shape (the net takes a stack of one size)."""
    groups: dict[tuple, list] = {}
    for item in loaded:
        groups.setdefault(item[1].shape, []).append(item)
    return list(groups.values())


def _store_mask(path: Path, meta: FaceMeta, mask: np.ndarray, iteration: int) -> None:
    meta.extra[KEY] = encode_mask(mask, iteration)
    write_meta(path, meta)


def _finish_writes(writing: list[tuple[Path, Future]], folder: Path, report: FolderReport) -> None:
    """Wait for one batch's writes, count them, then fsync the folder once so their renames are on disk too.
    A face that changed into something unreadable meanwhile is skipped; a failed write (full disk) stops all."""
    if not writing:
        return
    for path, future in writing:
        try:
            future.result()
            report.done += 1
        except (MetadataError, InputError) as err:
            report.skipped.append((path, err.message))
    fsync_folder(folder)


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
