"""Training samples: aligned faces read once into a shared cache, then fed as augmented batches.

A batch is a dict of uint8 arrays (the trainer converts them to float tensors on its device; uint8 keeps the
worker → trainer pipe 4× lighter):

- ``"src"``, ``"dst"``: (N, R, R, 3) BGR inputs — random affine + random warp,
- ``"src_target"``, ``"dst_target"``: (N, R, R, 3) BGR targets — the same random affine, no warp,
- ``"src_mask"``, ``"dst_mask"``: (N, R, R) landmark-hull masks of the targets, 0 or 255.

Workers are spawn-safe processes reading the cache from a numpy memmap, so a 2,000-face faceset is decoded once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import InputError
from facelab.geometry.alignment import face_from_landmarks, transform_points, warp_face
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.types import FaceMeta, FaceType

log = logging.getLogger(__name__)

# The seed's augmentation ranges.
ROTATION_DEG = 10.0
SCALE = 0.05
SHIFT = 0.05
WARP_CELLS = 5
WARP_AMOUNT = 0.25  # max offset of a warp grid point, in grid cells (0.25 cell = 5% of the face)


# -- pure maths -------------------------------------------------------------------------------------------


def face_mask(landmarks: np.ndarray, size: int, include: list | None = None, exclude: list | None = None) -> np.ndarray:
    """(size, size) uint8 mask: 255 inside the convex hull of the 68 ``landmarks`` and inside the ``include``
    polygons, 0 inside the ``exclude`` polygons (each a list of (x, y) points). Points are (x, y) pixels with
    the origin at the top-left pixel's corner (``facelab.types``), hence the -0.5 to OpenCV's pixel centres."""
    mask = (hull_mask(landmarks, size, size) * 255 + 0.5).astype(np.uint8)
    for polys, value in ((include or [], 255), (exclude or [], 0)):
        for poly in polys:
            pts = np.round(np.asarray(poly, np.float64) - 0.5).astype(np.int32).reshape(-1, 1, 2)
            if len(pts) >= 3:
                cv2.fillPoly(mask, [pts], value, lineType=cv2.LINE_AA)
    return mask


def random_affine(rng: np.random.Generator, size: int, *, flip: bool, scale_mod: float = 0.0) -> np.ndarray:
    """(2, 3) matrix ``augmented_from_face`` for a (size, size) face: rotation ±10°, scale ±5% (times
    1 + scale_mod/100), shift ±5% of the size, mirrored left-right when ``flip``; about the face centre."""
    angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
    scale = rng.uniform(1 - SCALE, 1 + SCALE) * (1 + scale_mod / 100.0)
    shift = rng.uniform(-SHIFT, SHIFT, 2) * size
    c = (size - 1) / 2.0
    m = cv2.getRotationMatrix2D((c, c), angle, scale)
    m[:, 2] += shift
    if flip:  # mirror after the affine: x' = size - 1 - x
        m = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
    return m


def random_warp_maps(rng: np.random.Generator, size: int, cells: int = WARP_CELLS,
                     amount: float = WARP_AMOUNT) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random distortion as ``cv2.remap`` maps (map_x, map_y), each (size, size) float32.

    A (cells+1)² grid of offsets spanning the face (uniform, at most ``amount`` cell widths; border points stay
    put) is interpolated bilinearly to every pixel and added to the identity grid.
    """
    step = (size - 1) / cells
    offsets = rng.uniform(-amount, amount, (2, cells + 1, cells + 1)) * step
    offsets[:, [0, -1], :] = 0
    offsets[:, :, [0, -1]] = 0
    # weights[i, k]: how much grid point k moves pixel i (tent functions on the grid).
    weights = np.clip(1 - np.abs(np.arange(size)[:, None] / step - np.arange(cells + 1)[None, :]), 0, None)
    dx, dy = (weights @ o @ weights.T for o in offsets)  # row index is y, column index is x
    grid_y, grid_x = np.mgrid[0:size, 0:size]
    return (grid_x + dx).astype(np.float32), (grid_y + dy).astype(np.float32)


def pick_src_by_yaw(src_yaws: np.ndarray, dst_yaws: np.ndarray, rng: np.random.Generator,
                    window: int | None = None) -> np.ndarray:
    """For each dst yaw, the index of a random src face among the ``window`` src faces nearest in yaw.

    ``window`` defaults to 1/10 of the src faces (at least 1), like the seed's 10 yaw bins.
    """
    order = np.argsort(src_yaws, kind="stable")
    sorted_yaws = np.asarray(src_yaws)[order]
    n = len(order)
    window = max(1, min(n, window or n // 10))
    out = np.empty(len(dst_yaws), np.int64)
    for i, yaw in enumerate(dst_yaws):
        centre = int(np.searchsorted(sorted_yaws, yaw))
        lo = int(np.clip(centre - window // 2, 0, n - window))
        out[i] = order[lo + rng.integers(window)]
    return out


def augment(face: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, flip: bool,
            scale_mod: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(warped input, target, target mask) of one (R, R, 3) uint8 face and its (R, R) uint8 mask."""
    size = face.shape[0]
    m = random_affine(rng, size, flip=flip, scale_mod=scale_mod)
    target = cv2.warpAffine(face, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    target_mask = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    map_x, map_y = random_warp_maps(rng, size)
    warped = cv2.remap(target, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, target, target_mask


# -- the face cache ---------------------------------------------------------------------------------------


def crop_to_model(image: np.ndarray, meta: FaceMeta, face_type: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """An aligned face re-cropped to the model's face type and resolution: ((R, R, 3) uint8, (R, R) uint8 mask).

    Same face type: a plain resize. Otherwise the model's crop is re-derived from the stored landmarks, so
    full-face files train a half-face model (a wider model type than the files repeats the border pixels).
    """
    if meta.face_type == face_type:
        s = resolution / float(image.shape[1])
        model_from_file = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
        face = cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    else:
        model_from_file = face_from_landmarks(meta.landmarks, FaceType(face_type), resolution)
        face = warp_face(image, model_from_file, resolution)
    polys = meta.mask_polygons or {}
    mask = face_mask(transform_points(meta.landmarks, model_from_file), resolution,
                     [transform_points(p, model_from_file) for p in polys.get("include", [])],
                     [transform_points(p, model_from_file) for p in polys.get("exclude", [])])
    return face, mask


@dataclass(frozen=True)
class CacheSpec:
    """Where a FaceCache lives on disk; small and picklable, so spawn workers can reopen it."""

    folder: str
    count: int
    resolution: int


class FaceCache:
    """Faces of one faceset decoded once into a memmap: ``faces`` (N, R, R, 3) uint8, ``masks`` (N, R, R)
    uint8, ``yaws`` (N,) float, ``names`` file names. ``close()`` removes the temp folder."""

    def __init__(self, spec: CacheSpec, names: list[str] | None = None, owner: bool = False):
        self.spec = spec
        shape = (spec.count, spec.resolution, spec.resolution)
        mode = "w+" if owner else "r"
        self.faces = np.memmap(Path(spec.folder) / "faces.u8", np.uint8, mode, shape=shape + (3,))
        self.masks = np.memmap(Path(spec.folder) / "masks.u8", np.uint8, mode, shape=shape)
        self.yaws = np.fromfile(Path(spec.folder) / "yaws.f64", np.float64) if not owner else np.zeros(spec.count)
        self.names = names or []
        self._owner = owner

    @classmethod
    def build(cls, folder: Path, face_type: str, resolution: int, progress: ProgressCallback = no_progress,
              label: str = "Loading faces") -> "FaceCache":
        """Decode every face of ``folder`` (threads; OpenCV releases the GIL) into a new temp cache."""
        paths = list_faces(folder)
        if not paths:
            raise InputError("no aligned faces in this folder", path=folder, fix="run `facelab extract` first")
        _remove_orphan_caches()
        tmp = tempfile.mkdtemp(prefix=f"{_CACHE_PREFIX}{os.getpid()}-")
        cache = cls(CacheSpec(tmp, len(paths), resolution), [p.name for p in paths], owner=True)
        try:
            wider = set()

            def load(i: int) -> None:
                image, meta = read_face(paths[i])
                cache.faces[i], cache.masks[i] = crop_to_model(image, meta, face_type, resolution)
                cache.yaws[i] = meta.yaw
                if _wider(face_type, meta.face_type):
                    wider.add(meta.face_type)

            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                for done, _ in enumerate(pool.map(load, range(len(paths))), 1):
                    progress(Progress(label, done, len(paths)))
            cache.faces.flush()
            cache.masks.flush()
            cache.yaws.tofile(Path(tmp) / "yaws.f64")
        except BaseException:
            cache.close()
            raise
        if wider:
            log.warning("%s: faces are %s but the model is %s: the model's crop shows black borders",
                        folder, "/".join(sorted(wider)), face_type)
        return cache

    def __len__(self) -> int:
        return self.spec.count

    def close(self) -> None:
        if self._owner:
            shutil.rmtree(self.spec.folder, ignore_errors=True)


_CACHE_PREFIX = "facelab-faces-"


def _remove_orphan_caches() -> None:
    """Delete caches left in the temp folder by trainers that were killed (their pid is in the name)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_CACHE_PREFIX}*-*"):
        pid = folder.name[len(_CACHE_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _wider(model_type: str, file_type: str) -> bool:
    order = [t.value for t in FaceType]
    return order.index(model_type) > order.index(file_type)


# -- batches ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedSettings:
    batch_size: int
    random_flip: bool = True
    sort_by_yaw: bool = False
    src_scale_mod: float = 0.0


def make_batch(src: FaceCache, dst: FaceCache, settings: FeedSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One augmented batch (see the module docstring for keys, shapes and dtypes)."""
    n = settings.batch_size
    dst_idx = rng.integers(len(dst), size=n)
    if settings.sort_by_yaw:
        src_idx = pick_src_by_yaw(src.yaws, dst.yaws[dst_idx], rng)
    else:
        src_idx = rng.integers(len(src), size=n)
    batch: dict[str, Any] = {}
    for side, cache, idx, scale_mod in (("src", src, src_idx, settings.src_scale_mod), ("dst", dst, dst_idx, 0.0)):
        parts = [augment(cache.faces[i], cache.masks[i], rng, scale_mod=scale_mod,
                         flip=settings.random_flip and rng.random() < 0.5) for i in idx]
        batch[side] = np.stack([p[0] for p in parts])
        batch[f"{side}_target"] = np.stack([p[1] for p in parts])
        batch[f"{side}_mask"] = np.stack([p[2] for p in parts])
    return batch


def _worker(src_spec: CacheSpec, dst_spec: CacheSpec, settings: FeedSettings, seed: int,
            out: mp.Queue, stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the trainer, which then stops us
    cv2.setNumThreads(1)
    src, dst = FaceCache(src_spec), FaceCache(dst_spec)
    rng = np.random.default_rng(seed)
    while not stop.is_set():
        batch = make_batch(src, dst, settings, rng)
        while not stop.is_set():
            try:
                out.put(batch, timeout=0.2)
                break
            except queue.Full:
                continue


class SampleFeeder:
    """Endless augmented batches from two caches: ``next()`` returns one batch dict.

    ``workers=0`` builds batches in this process from a seeded generator whose state can be saved and
    restored (``rng_state``), for exact resumes; ``workers>0`` starts that many spawn processes.
    """

    def __init__(self, src: FaceCache, dst: FaceCache, settings: FeedSettings, *, workers: int = 0, seed: int = 0):
        self.src, self.dst, self.settings = src, dst, settings
        self.rng = np.random.default_rng(seed)
        self._procs: list[Any] = []
        if workers > 0:
            ctx = mp.get_context("spawn")
            self._queue = ctx.Queue(maxsize=2 * workers)
            self._stop = ctx.Event()
            for i in range(workers):
                p = ctx.Process(target=_worker, args=(src.spec, dst.spec, settings, seed * 1000 + i + 1,
                                                      self._queue, self._stop), daemon=True)
                p.start()
                self._procs.append(p)

    def next(self) -> dict[str, np.ndarray]:
        if not self._procs:
            return make_batch(self.src, self.dst, self.settings, self.rng)
        while True:
            try:
                return self._queue.get(timeout=5)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"a sample worker died (exit code {dead[0].exitcode})") from None

    @property
    def rng_state(self) -> dict:
        return self.rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def close(self) -> None:
        if not self._procs:
            return
        self._stop.set()
        for p in self._procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
                p.join()
        self._queue.cancel_join_thread()
        self._procs = []


def default_workers() -> int:
    """One sample worker per CPU core beside the trainer, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
