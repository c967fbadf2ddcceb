"""Merging a folder of frames: read frames on worker threads, predict faces in batches across frames, blend and
write on a thread pool (OpenCV and NumPy release the GIL). Queues are bounded, so memory stays flat however
long the video; frames whose outputs all exist are skipped unless ``overwrite`` (resume after a stop or a kill).
"""

from __future__ import annotations

import collections
import errno
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from facelab import provenance
from facelab.errors import InputError, MetadataError, OutputError, WorkspaceError
from facelab.geometry.alignment import warp_face
from facelab.io.faceimage import list_faces, read_meta
from facelab.io.files import write_bytes_atomic
from facelab.io.frames import encode_image, list_images, parallel_map, workers as default_workers
from facelab.merge.enhance import FaceEnhancer
from facelab.merge.masks import learned_masks_needed, mask_parts
from facelab.merge.merger import PredictedFace, merge_frame, model_face_from_frame, segment_dst
from facelab.merge.options import MergeSettings
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta

log = logging.getLogger(__name__)


class FaceSwapper(Protocol):
    """What merging needs from a trained model (``facelab.train.swap.Swapper``)."""

    name: str
    resolution: int
    face_type: str
    learn_mask: bool

    def predict(self, dst_faces: np.ndarray, masks: tuple[bool, bool] = (True, True)
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]: ...


@dataclass(frozen=True)
class MergePaths:
    frames: Path
    aligned: Path
    merged: Path
    merged_mask: Path
    debug: Path | None = None


@dataclass(frozen=True)
class FrameResult:
    name: str
    faces: int
    seconds: float
    info: list[str]


@dataclass
class MergeReport:
    frames: int = 0
    merged: int = 0
    kept: int = 0
    without_face: int = 0
    faces: int = 0
    skipped_faces: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class AlignedFace:
    """A dst face as the model wants it: ``face_from_frame`` (2, 3) maps the frame to the model's square of side R,
    ``crop`` (R, R, 3) uint8 BGR is the frame warped by it."""

    meta: FaceMeta
    face_from_frame: np.ndarray
    crop: np.ndarray


@dataclass
class _Loaded:
    number: int
    path: Path
    frame: np.ndarray
    faces: list[AlignedFace]


def frame_done(paths: MergePaths, frame: Path) -> bool:
    """Whether every output of ``frame`` is written (merged frame and mask), so a resume can skip it."""
    return all((folder / f"{frame.stem}.png").is_file() for folder in (paths.merged, paths.merged_mask))


def group_faces(aligned: Path) -> tuple[dict[str, list[FaceMeta]], list[tuple[Path, str]]]:
    """Dst faces by the stem of the frame they came from, and the faces skipped (no or bad metadata) with why."""
    by_frame: dict[str, list[FaceMeta]] = collections.defaultdict(list)
    skipped = []
    for path in list_faces(aligned):
        try:
            meta = read_meta(path)
        except (MetadataError, InputError) as err:
            skipped.append((path, err.message))
            log.warning("skipping %s", err)
            continue
        by_frame[Path(meta.source_filename).stem].append(meta)
    return by_frame, skipped


def read_frame(path: Path) -> np.ndarray:
    """The dst frame at ``path`` as (H, W, 3) uint8 BGR."""
    frame = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError("cannot decode this frame", path=path, fix="re-extract the dst frames")
    return frame


def align_faces(frame: np.ndarray, metas: list[FaceMeta], swapper: FaceSwapper) -> list[AlignedFace]:
    """Each dst face of ``frame`` aligned to the model's face type and resolution."""
    faces = []
    for meta in metas:
        matrix = model_face_from_frame(meta, swapper.face_type, swapper.resolution)
        faces.append(AlignedFace(meta, matrix, warp_face(frame, matrix, swapper.resolution)))
    return faces


def predict_faces(swapper: FaceSwapper, frames: list[list[AlignedFace]],
                  masks: tuple[bool, bool] = (True, True)) -> list[list[PredictedFace]]:
    """The model's answer for the aligned faces of several frames, in one batch: one list per frame, in order.
    ``masks``: whether the model's swap and dst masks are needed (``masks.learned_masks_needed``)."""
    crops = [face.crop for faces in frames for face in faces]
    if not crops:
        return [[] for _ in frames]
    pred, pred_mask, dst_mask = swapper.predict(np.stack(crops), masks)
    out, k = [], 0
    for faces in frames:
        out.append([PredictedFace(face.meta, face.face_from_frame, pred[k + i],
                                  None if pred_mask is None else pred_mask[k + i],
                                  None if dst_mask is None else dst_mask[k + i]) for i, face in enumerate(faces)])
        k += len(faces)
    return out


def wants_super_resolution(settings: MergeSettings) -> bool:
    """Whether any frame is merged with super resolution (so the enhancer must be loaded)."""
    return bool(settings.base["super_resolution"] or any(r.options.get("super_resolution") for r in settings.ranges))


def _mask_names(settings: MergeSettings) -> list[str]:
    return [settings.base["mask"], *(r.options["mask"] for r in settings.ranges if "mask" in r.options)]


def learned_masks_wanted(settings: MergeSettings, learns_mask: bool) -> tuple[bool, bool]:
    """Whether any frame's mask uses the model's swap mask and its dst mask."""
    return learned_masks_needed(_mask_names(settings), learns_mask)


def merge_folder(paths: MergePaths, swapper: FaceSwapper, settings: MergeSettings, *, overwrite: bool = False,
                 threads: int | None = None, batch_faces: int = 16,
                 on_frame: Callable[[FrameResult], None] | None = None,
                 progress: ProgressCallback = no_progress, segmenter=None) -> MergeReport:
    """Merge every frame of ``paths.frames`` into ``paths.merged`` (PNG, labelled as synthetic) and its mask into
    ``paths.merged_mask``; with ``paths.debug`` also a debug panel per frame with faces. ``segmenter``: a loaded
    XSeg (``facelab.xseg.segmenter.Segmenter``) for the ``seg-*`` masks, or None."""
    start = time.perf_counter()
    frames = list_images(paths.frames)
    if not frames:
        raise WorkspaceError("no dst frames to merge", path=paths.frames, fix="extract the dst video's frames first")
    if not paths.aligned.is_dir():
        raise WorkspaceError("no dst faces", path=paths.aligned, fix="run the dst face extraction first")
    by_frame, skipped = group_faces(paths.aligned)
    report = MergeReport(frames=len(frames), skipped_faces=skipped)
    todo = [(n, p) for n, p in enumerate(frames, 1) if overwrite or not frame_done(paths, p)]
    report.kept = len(frames) - len(todo)
    threads = threads or default_workers()
    enhancer = FaceEnhancer() if wants_super_resolution(settings) else None
    masks = learned_masks_wanted(settings, swapper.learn_mask)
    # seg-dst for faces without an applied mask: segmented a batch at a time here, not one by one when blending
    batch_seg_dst = segmenter is not None and "seg-dst" in mask_parts(_mask_names(settings), swapper.learn_mask)

    def load(item: tuple[int, Path]) -> _Loaded:
        number, path = item
        frame = read_frame(path)
        return _Loaded(number, path, frame, align_faces(frame, by_frame.get(path.stem, []), swapper))

    def blend_and_write(item: _Loaded, predicted: list[PredictedFace]) -> FrameResult:
        t0 = time.perf_counter()
        merged = merge_frame(item.frame, predicted, settings.for_frame(item.number), swapper.learn_mask, enhancer,
                             debug=paths.debug is not None, segmenter=segmenter)
        details = {"frame": item.path.name, "faces_swapped": len(predicted), "model": swapper.name}
        # The merged frame last: it marks the frame done (``frame_done`` also checks the mask, for older merges).
        write_bytes_atomic(paths.merged_mask / f"{item.path.stem}.png", encode_image(merged.mask, "png"))
        if paths.debug is not None and merged.debug is not None:
            write_bytes_atomic(paths.debug / f"{item.path.stem}.jpg", encode_image(merged.debug, "jpg"))
        write_bytes_atomic(paths.merged / f"{item.path.stem}.png",
                           provenance.label_png(encode_image(merged.image, "png"), **details))
        return FrameResult(item.path.name, len(predicted), time.perf_counter() - t0, merged.info)

    pending: collections.deque[Future] = collections.deque()
    batch: list[_Loaded] = []

    def finish(future: Future) -> None:
        try:
            result: FrameResult = future.result()
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise OutputError(f"the disk is full: {report.kept + report.merged} of {report.frames} frames are "
                              "merged and kept", path=paths.merged,
                              fix="free disk space, then merge again: it goes on with the frames not done") from None
        report.merged += 1
        report.faces += result.faces
        report.without_face += result.faces == 0
        if on_frame is not None:
            on_frame(result)
        progress(Progress("merge", report.merged, len(todo)))

    def flush(pool: ThreadPoolExecutor) -> None:
        answers = predict_faces(swapper, [item.faces for item in batch], masks)
        if batch_seg_dst:
            answers = segment_dst([item.frame for item in batch], answers, segmenter)
        for item, predicted in zip(batch, answers):
            pending.append(pool.submit(blend_and_write, item, predicted))
        batch.clear()
        while len(pending) > 2 * threads:
            finish(pending.popleft())

    progress(Progress("merge", 0, len(todo)))
    with ThreadPoolExecutor(threads) as pool:
        for item in parallel_map(load, todo, threads=min(threads, 4)):
            batch.append(item)
            if sum(len(b.faces) for b in batch) >= batch_faces or len(batch) >= batch_faces:
                flush(pool)
        flush(pool)
        while pending:
            finish(pending.popleft())
    report.seconds = time.perf_counter() - start
    return report
