"""``facelab sort``: order a faceset folder by one method, renaming files ``00000.jpg`` … in that order.

Each method is a ``SortMethod`` in ``SORT_METHODS``: an optional per-face ``measure`` (run over every face in
a thread pool, on the face decoded at ``WORK_SIZE``) and a ``rank`` that turns metadata and measures into
(kept order, discarded). Discarded faces move to ``<folder>_trash``; nothing is deleted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError
from facelab.faceset import rename, scores
from facelab.io.faceimage import list_faces, read_meta
from facelab.faceset.options import SORT_OPTIONS
from facelab.options import validate
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.registry import Registry
from facelab.types import FaceMeta

log = logging.getLogger(__name__)

WORK_SIZE = 128  # faces are scored at this size: enough detail to rank blur, 4× less work than 256 px

Ranking = tuple[Sequence[int], Sequence[int]]  # (kept, in their new order; discarded)
BAD_FACE = (InputError, OSError)  # what reading one face file may raise when that file is bad


def warn_skipped(path: Path, err: BaseException) -> None:
    """The one warning for a face left out of a step and left as it is: the file and the reason."""
    reason = str(err) if getattr(err, "path", None) else f"{path}: {err}"
    log.warning("skipped a face, left as it is: %s", reason)


@dataclass(frozen=True)
class Face:
    """One face as a measure sees it: pixels at WORK_SIZE (BGR and grey uint8), landmarks scaled to them,
    the landmark hull mask (``scores.hull_mask``) and the metadata."""

    image: np.ndarray = field(repr=False)
    grey: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    meta: FaceMeta


@dataclass(frozen=True)
class SortMethod:
    """``help`` for users; ``rank(metas, measures, options) -> (kept order, discarded)``.

    ``measure(face) -> value`` runs once per face when the method needs pixels; a method that needs a model
    gives ``setup() -> measure`` instead, called once per sort. ``full_size`` decodes faces at their stored
    size instead of WORK_SIZE.
    """

    help: str
    rank: Callable[[list[FaceMeta], list[Any] | None, dict[str, Any]], Ranking]
    measure: Callable[[Face], Any] | None = None
    setup: Callable[[], Callable[[Face], Any]] | None = None
    full_size: bool = False


SORT_METHODS: Registry[SortMethod] = Registry("sort method")


@dataclass(frozen=True)
class SortResult:
    kept: list[Path]  # new paths, in order
    trashed: list[Path]  # their paths in the trash folder
    skipped: list[Path] = field(default_factory=list)  # bad faces (metadata or pixels), left as they were


# -- the methods ------------------------------------------------------------------------------------------


def _by(values: Sequence[float], descending: bool) -> Ranking:
    arr = np.asarray(values, np.float64)
    order = np.argsort(-arr if descending else arr, kind="stable")
    return order.tolist(), []


def _by_measure(help: str, measure: Callable[[Face], float], descending: bool) -> SortMethod:
    return SortMethod(help, rank=lambda metas, values, opts: _by(values, descending), measure=measure)


def _by_meta(help: str, key: Callable[[FaceMeta], float], descending: bool) -> SortMethod:
    return SortMethod(help, rank=lambda metas, values, opts: _by([key(m) for m in metas], descending))


def _rect_area(meta: FaceMeta) -> float:
    x0, y0, x1, y1 = meta.source_rect
    return (x1 - x0) * (y1 - y0)


def _rank_hist(metas: list[FaceMeta], hists: list, _o: dict) -> Ranking:
    return (scores.similarity_chain(np.stack(hists)).tolist() if hists else []), []


def _rank_hist_dissim(metas: list[FaceMeta], hists: list, _o: dict) -> Ranking:
    return _by(scores.dissimilarity(np.stack(hists)) if hists else [], descending=True)


_add = SORT_METHODS.register
_add("blur")(_by_measure("sharpness inside the face; blurriest last",
                         lambda f: scores.sharpness(f.grey, f.mask), descending=True))
_add("motion-blur")(_by_measure("detail in the face's poorest direction; motion-blurred faces last",
                                lambda f: scores.motion_sharpness(f.grey, f.mask), descending=True))
_add("face-yaw")(_by_meta("head turned to the image's left first, to its right last",
                          lambda m: m.yaw, descending=False))
_add("face-pitch")(_by_meta("looking down first, looking up last", lambda m: m.pitch, descending=False))
_add("hist")(SortMethod("similar colour histograms next to each other (groups shots and people)",
                        rank=_rank_hist, measure=lambda f: scores.colour_histogram(f.image)))
_add("hist-dissim")(SortMethod("faces with the most look-alikes (face histogram) last", rank=_rank_hist_dissim,
                               measure=lambda f: scores.grey_histogram(f.grey, f.mask)))
_add("brightness")(_by_measure("brightest face first", lambda f: scores.brightness(f.image, f.mask),
                               descending=True))
_add("hue")(_by_measure("face hue, highest angle first (reds wrap round)", lambda f: scores.hue(f.image, f.mask),
                        descending=True))
_add("black")(_by_measure("most black pixels (face cut by the frame edge) last",
                          lambda f: scores.black_fraction(f.image), descending=False))
_add("source-rect-size")(_by_meta("biggest face in its source frame first", _rect_area, descending=True))


def _origname_key(meta: FaceMeta) -> tuple:
    return (_natural_key(meta.source_filename), meta.face_index)


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def _rank_origname(metas: list[FaceMeta], _m: Any, _o: dict) -> Ranking:
    return sorted(range(len(metas)), key=lambda i: _origname_key(metas[i])), []


def _rank_one_face(metas: list[FaceMeta], _m: Any, _o: dict) -> Ranking:
    per_frame: dict[str, int] = {}
    for meta in metas:
        per_frame[meta.source_filename] = per_frame.get(meta.source_filename, 0) + 1
    order = sorted(range(len(metas)), key=lambda i: _origname_key(metas[i]))
    kept = [i for i in order if per_frame[metas[i].source_filename] == 1 or not metas[i].source_filename]
    kept_set = set(kept)
    return kept, [i for i in order if i not in kept_set]


def _measure_final(face: Face) -> tuple[float, np.ndarray]:
    return scores.sharpness(face.grey, face.mask), scores.grey_histogram(face.grey, face.mask)


def _rank_final(metas: list[FaceMeta], measures: list, options: dict) -> Ranking:
    if not metas:
        return [], []
    sharp = np.array([m[0] for m in measures])
    dissim = scores.dissimilarity(np.stack([m[1] for m in measures]))
    kept, discarded = scores.select_best(np.array([m.yaw for m in metas]), np.array([m.pitch for m in metas]),
                                         sharp, dissim, int(options["final_count"]))
    return kept.tolist(), discarded.tolist()


def _rank_identity(metas: list[FaceMeta], measures: list, options: dict) -> Ranking:
    if not metas:
        return [], []
    desc = np.stack(measures)
    labels = scores.cluster_by_distance(desc, float(options["identity_threshold"]))
    main = np.nonzero(labels == 0)[0]
    centre = desc[main].mean(axis=0)
    # Main person first, the most typical views of them first; everyone else to the trash.
    kept = main[np.argsort(np.linalg.norm(desc[main] - centre, axis=1), kind="stable")]
    others = np.nonzero(labels != 0)[0]
    return kept.tolist(), others[np.argsort(labels[others], kind="stable")].tolist()


def _identity_setup() -> Callable[[Face], np.ndarray]:
    from facelab.faceset.identity import FaceDescriber

    local = threading.local()  # one network per worker thread: dlib nets keep per-call scratch state

    def measure(face: Face) -> np.ndarray:
        if not hasattr(local, "describer"):
            local.describer = FaceDescriber()
        return local.describer.describe([face.image], [face.landmarks])[0]

    return measure


_add("origname")(SortMethod("by source frame name and face number", rank=_rank_origname))
_add("one-face")(SortMethod("faces from frames that yielded more than one face go to the trash",
                            rank=_rank_one_face))
_add("final")(SortMethod(
    "keep the best N (--final-count): spread over head yaw, sharpest in each, then pitch, then least "
    "look-alike; the rest go to the trash", rank=_rank_final, measure=_measure_final))
_add("identity")(SortMethod(
    "the main person (largest group by dlib face descriptor) first, most typical first; other people to "
    "the trash", rank=_rank_identity, setup=_identity_setup, full_size=True))


# -- running a sort ---------------------------------------------------------------------------------------


def sort_faceset(folder: str | Path, method: str, options: dict[str, Any] | None = None,
                 progress: ProgressCallback = no_progress, workers: int | None = None) -> SortResult:
    """Sort the faces in ``folder`` by ``method`` (a name in SORT_METHODS), renaming them in order.

    ``options``: SORT_OPTIONS values (missing ones take their defaults). Faces ``rank`` discards move to
    ``<folder>_trash``. A face whose metadata or pixels cannot be read is skipped with a warning and left as it
    is, under its name (``SortResult.skipped``). Raises OptionError for an unknown method, InputError for a
    missing folder or one without a readable face (nothing is moved then).
    """
    folder = Path(folder)
    chosen = SORT_METHODS.get(method)
    values = validate(SORT_OPTIONS, options or {})
    rename.finish_pending(folder)
    paths = list_faces(folder)
    if not paths:
        raise InputError("no faces in this folder", path=folder, fix="run the extract step first or check the path")
    faces = _read_metas(paths, progress, workers)
    measure = chosen.setup() if chosen.setup is not None else chosen.measure
    measures = None
    if measure is not None:
        faces, measures = _measure_all(faces, measure, chosen.full_size, progress, workers)
    skipped = sorted(set(paths) - {path for path, _ in faces})
    if not faces:
        raise InputError(f"none of the {len(paths)} faces could be read (the warnings above say why)", path=folder,
                         fix="re-extract the faces or run `facelab faceset import-dfl` on DeepFaceLab faces")
    kept, discarded = chosen.rank([meta for _, meta in faces], measures, values)
    log.info("sort %s: %d kept, %d to trash, %d skipped", method, len(kept), len(discarded), len(skipped))
    trashed = rename.move_to_trash(folder, [faces[i][0] for i in discarded], progress)
    kept_paths = [faces[i][0] for i in kept]
    targets = _numbered_names(kept_paths, taken={p.name for p in skipped})
    rename.rename_all(folder, kept_paths, targets, progress)
    return SortResult([folder / t for t in targets], trashed, skipped)


def _numbered_names(paths: list[Path], taken: set[str]) -> list[str]:
    """``00000.jpg``, ``00001.png`` … in order, passing over the names of faces left in place (``taken``)."""
    names, n = [], 0
    for path in paths:
        while f"{n:05d}{path.suffix.lower()}" in taken:
            n += 1
        names.append(f"{n:05d}{path.suffix.lower()}")
        n += 1
    return names


def _pool(workers: int | None) -> ThreadPoolExecutor:
    # Threads suffice: OpenCV, numpy and dlib do their work without holding the GIL.
    return ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)


def _each_face(func: Callable[[Any], Any], items: Sequence[Any], paths: Sequence[Path], label: str,
               progress: ProgressCallback, workers: int | None) -> list[tuple[int, Any]]:
    """``(i, func(items[i]))`` for every item that worked, computed in a thread pool. A face whose file is bad
    (``BAD_FACE``: MetadataError or another InputError, OSError) is left out with a warning naming it and why: one
    damaged face from a shared faceset must not stop a sort of thousands."""

    def safe(item: Any) -> tuple[bool, Any]:
        try:
            return True, func(item)
        except BAD_FACE as err:
            return False, err

    out = []
    with _pool(workers) as pool:
        for i, (ok, value) in enumerate(pool.map(safe, items)):
            if ok:
                out.append((i, value))
            else:
                warn_skipped(paths[i], value)
            progress(Progress(label, i + 1, len(items)))
    return out


def _read_metas(paths: list[Path], progress: ProgressCallback, workers: int | None) -> list[tuple[Path, FaceMeta]]:
    """(path, metadata) of every face whose metadata reads and checks; the others are left out (warned)."""
    return [(paths[i], meta) for i, meta in _each_face(read_meta, paths, paths, "Reading metadata", progress, workers)]


def _measure_all(faces: list[tuple[Path, FaceMeta]], measure: Callable[[Face], Any], full_size: bool,
                 progress: ProgressCallback, workers: int | None) -> tuple[list[tuple[Path, FaceMeta]], list[Any]]:
    """(the faces whose pixels decode, their measures); a face that fails to decode is left out (warned)."""
    done = _each_face(lambda face: measure(load_face(*face, full_size=full_size)), faces, [p for p, _ in faces],
                      "Measuring faces", progress, workers)
    return [faces[i] for i, _ in done], [value for _, value in done]


def load_face(path: Path, meta: FaceMeta, full_size: bool = False) -> Face:
    """Decode a face at WORK_SIZE (decoding JPEGs at 1/2, 1/4 or 1/8 scale where that is still ≥ WORK_SIZE)."""
    size = meta.image_size
    flag = cv2.IMREAD_COLOR
    if not full_size:
        for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                                (2, cv2.IMREAD_REDUCED_COLOR_2)):
            if size // factor >= WORK_SIZE:
                flag = reduced
                break
    image = cv2.imread(str(path), flag)
    if image is None:
        raise MetadataError("the image data is corrupt", path=path, fix="re-extract this face or move it away")
    target = size if full_size else WORK_SIZE
    if image.shape[0] != target or image.shape[1] != target:
        image = cv2.resize(image, (target, target), interpolation=cv2.INTER_AREA)
    landmarks = meta.landmarks * (target / size)
    return Face(image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), landmarks, scores.hull_mask(landmarks, image.shape),
                meta)
