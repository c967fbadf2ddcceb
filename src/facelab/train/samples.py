"""Training samples: aligned faces read once into a shared cache, then fed as augmented batches.

A batch is a dict of uint8 arrays (the trainer converts them to float tensors on its device; uint8 keeps the
worker → trainer pipe 4× lighter):

- ``"src"``, ``"dst"``: (N, R, R, 3) BGR inputs — random affine + random warp,
- ``"src_target"``, ``"dst_target"``: (N, R, R, 3) BGR targets — the same random affine, no warp,
- ``"src_mask"``, ``"dst_mask"``: (N, R, R) masks of the targets, 0-255: the XSeg mask `facelab xseg apply`
  stored in the face's metadata when it has one, else the landmark hull plus the mask editor's polygons,
- ``"src_em_mask"``, ``"dst_em_mask"`` (only with ``FeedSettings.eyes_mouth``): (N, R, R) eye and mouth regions of
  the targets (``eyes_mouth_mask``), 0 or 255.

Src faces can be recoloured before augmenting (a random HSV shift, or a colour transfer toward a random dst face),
so the model does not learn the src lighting as part of the identity.

Workers are spawn-safe processes reading the cache from a numpy memmap, so a 2,000-face faceset is decoded once.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import InputError
from facelab.geometry import landmarks68 as lm68
from facelab.geometry.alignment import face_from_landmarks, transform_points, warp_face
from facelab.geometry.colour import COLOUR_TRANSFERS
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.train.control import pid_alive
from facelab.types import FaceMeta, FaceType
from facelab.xseg.stored import stored_mask

log = logging.getLogger(__name__)

# The seed's augmentation ranges.
ROTATION_DEG = 10.0
SCALE = 0.05
SHIFT = 0.05
WARP_CELLS = 5
WARP_AMOUNT = 0.25  # max offset of a warp grid point, in grid cells (0.25 cell = 5% of the face)
YAW_BINS = 16  # uniform yaw: faces are drawn evenly over this many bins of the faceset's yaw range
# Eye and mouth regions are the landmark hulls grown by this fraction of the face side (covers lids and lips).
EYES_MOUTH_GROW = 1 / 32


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


def eyes_mouth_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 mask: 255 on each eye and on the mouth — the convex hulls of iBUG-68 points 36-41, 42-47
    and 48-59 — grown by an elliptic kernel of ``size * EYES_MOUTH_GROW`` pixels (odd, at least 3); 0 elsewhere.

    SAEHD's "eyes and mouth priority" weighs the loss heavier there: those few pixels carry most of a face's
    identity and expression, and an average-face blur hides them first.
    """
    points = np.asarray(landmarks, np.float64)
    mask = np.zeros((size, size), np.uint8)
    # The mouth's hull is that of its outer lip line (48-59): the inner points (60-67) lie inside it.
    for group in (lm68.EYE_IMAGE_LEFT, lm68.EYE_IMAGE_RIGHT, slice(lm68.MOUTH.start, 60)):
        hull = cv2.convexHull(np.round((points[group] - 0.5) * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255, shift=4)
    k = max(3, int(size * EYES_MOUTH_GROW) | 1)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def random_hsv(face: np.ndarray, rng: np.random.Generator, power: float) -> np.ndarray:
    """(R, R, 3) uint8 BGR face with a random hue turn of up to ±180·``power`` degrees and saturation and value
    shifts of up to ±``power``/2 (SAEHD's random HSV power, 0-0.3): src lighting stops being part of the identity."""
    if power <= 0:
        return face
    hsv = cv2.cvtColor(face.astype(np.float32) / 255, cv2.COLOR_BGR2HSV)  # H in [0, 360), S and V in [0, 1]
    turn = max(1, int(180 * power))
    hsv[..., 0] = (hsv[..., 0] + rng.integers(-turn, turn + 1)) % 360
    hsv[..., 1:] = np.clip(hsv[..., 1:] + (rng.random(2) - 0.5) * power, 0, 1)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR) * 255 + 0.5, 0, 255).astype(np.uint8)


def transfer_colours(face: np.ndarray, reference: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(R, R, 3) uint8 BGR ``face`` recoloured toward ``reference`` inside the (R, R) uint8 ``mask`` by the colour
    transfer ``mode`` of ``facelab.geometry.colour`` ("none" returns ``face``)."""
    if mode == "none":
        return face
    out = COLOUR_TRANSFERS.get(mode)(face.astype(np.float32) / 255, reference.astype(np.float32) / 255,
                                     mask.astype(np.float32) / 255)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


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


def uniform_yaw_indices(yaws: np.ndarray, n: int, rng: np.random.Generator, bins: int = YAW_BINS) -> np.ndarray:
    """``n`` face indices drawn evenly over yaw: a random non-empty bin of ``bins`` equal bins spanning the yaws,
    then a random face in it. Rare side views are then seen as often as the many frontal ones."""
    yaws = np.asarray(yaws, np.float64)
    lo, hi = float(yaws.min()), float(yaws.max())
    bin_of = np.minimum(((yaws - lo) / max(hi - lo, 1e-9) * bins).astype(np.int64), bins - 1)
    members = [np.flatnonzero(bin_of == b) for b in np.unique(bin_of)]
    picked = rng.integers(len(members), size=n)
    return np.array([members[b][rng.integers(len(members[b]))] for b in picked], np.int64)


def augment(face: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, flip: bool,
            scale_mod: float = 0.0, warp: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(warped input, target, target mask) of one (R, R, 3) uint8 face and its (R, R) or (R, R, K) uint8 mask(s).

    ``warp=False`` leaves out the random warp (the input is the target): SAEHD turns it off late to sharpen.
    """
    size = face.shape[0]
    m = random_affine(rng, size, flip=flip, scale_mod=scale_mod)
    target = cv2.warpAffine(face, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    target_mask = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if not warp:
        return target, target, target_mask
    map_x, map_y = random_warp_maps(rng, size)
    warped = cv2.remap(target, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, target, target_mask


# -- the face cache ---------------------------------------------------------------------------------------


def crop_to_model(image: np.ndarray, meta: FaceMeta, face_type: str, resolution: int, *, eyes_mouth: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """An aligned face re-cropped to the model's face type and resolution: ((R, R, 3) uint8, (R, R) uint8 mask,
    (R, R) uint8 eyes-and-mouth mask when ``eyes_mouth``, else None, whether the mask is the face's applied XSeg
    mask).

    Same face type: a plain resize. Otherwise the model's crop is re-derived from the stored landmarks, so
    full-face files train a half-face model (a wider model type than the files repeats the border pixels).
    The mask is the XSeg mask stored in the metadata (``xseg.stored``) brought into the model's crop the same
    way, else the landmark hull plus the editor's include polygons minus its excludes (``face_mask``).
    """
    same_type = meta.face_type == face_type
    if same_type:
        s = resolution / float(image.shape[1])
        model_from_file = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
        face = cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    else:
        model_from_file = face_from_landmarks(meta.landmarks, FaceType(face_type), resolution)
        face = warp_face(image, model_from_file, resolution)
    landmarks = transform_points(meta.landmarks, model_from_file)
    xseg = stored_mask(meta)
    if xseg is not None:
        mask = np.rint(np.clip(_to_model(xseg, model_from_file, resolution, same_type), 0, 1) * 255).astype(np.uint8)
    else:
        polys = meta.mask_polygons or {}
        mask = face_mask(landmarks, resolution,
                         [transform_points(p, model_from_file) for p in polys.get("include", [])],
                         [transform_points(p, model_from_file) for p in polys.get("exclude", [])])
    return face, mask, eyes_mouth_mask(landmarks, resolution) if eyes_mouth else None, xseg is not None


def _to_model(mask: np.ndarray, model_from_file: np.ndarray, resolution: int, same_type: bool) -> np.ndarray:
    """A (S, S) float mask of the face file in the model's (R, R) crop: resized like the face when the face types
    agree, else warped by ``model_from_file`` (0 outside the file's square: nothing known there is face)."""
    if same_type:
        shrink = resolution < mask.shape[0]
        return cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.warpAffine(mask, model_from_file, (resolution, resolution), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@dataclass(frozen=True)
class CacheSpec:
    """Where a FaceCache lives on disk; small and picklable, so spawn workers can reopen it."""

    folder: str
    count: int
    resolution: int
    eyes_mouth: bool = False  # whether it holds eye and mouth masks (R² bytes a face: only models that use them)


class FaceCache:
    """Faces of one faceset decoded once into a memmap: ``faces`` (N, R, R, 3) uint8, ``masks`` (N, R, R) uint8,
    ``em_masks`` (eyes and mouth, N, R, R) uint8 or None when not built, ``yaws`` (N,) float, ``names`` file
    names, ``xseg_masks`` how many of the masks are applied XSeg masks (the others: hull + polygons; counted
    by ``build``). ``close()`` removes the temp folder."""

    def __init__(self, spec: CacheSpec, names: list[str] | None = None, owner: bool = False):
        self.spec = spec
        shape = (spec.count, spec.resolution, spec.resolution)
        mode = "w+" if owner else "r"
        self.faces = np.memmap(Path(spec.folder) / "faces.u8", np.uint8, mode, shape=shape + (3,))
        self.masks = np.memmap(Path(spec.folder) / "masks.u8", np.uint8, mode, shape=shape)
        self.em_masks = (np.memmap(Path(spec.folder) / "em_masks.u8", np.uint8, mode, shape=shape)
                         if spec.eyes_mouth else None)
        self.yaws = np.fromfile(Path(spec.folder) / "yaws.f64", np.float64) if not owner else np.zeros(spec.count)
        self.names = names or []
        self.xseg_masks = 0
        self._owner = owner

    @classmethod
    def build(cls, folder: Path, face_type: str, resolution: int, progress: ProgressCallback = no_progress,
              label: str = "Loading faces", *, eyes_mouth: bool = False) -> "FaceCache":
        """Decode every face of ``folder`` (threads; OpenCV releases the GIL) into a new temp cache; with
        ``eyes_mouth`` (``FeedSettings.eyes_mouth``) also their eye and mouth masks."""
        paths = list_faces(folder)
        if not paths:
            raise InputError("no aligned faces in this folder", path=folder, fix="run `facelab extract` first")
        _remove_orphan_caches()
        tmp = tempfile.mkdtemp(prefix=f"{_CACHE_PREFIX}{os.getpid()}-")
        cache = cls(CacheSpec(tmp, len(paths), resolution, eyes_mouth), [p.name for p in paths], owner=True)
        try:
            wider = set()

            def load(i: int) -> bool:
                image, meta = read_face(paths[i])
                cache.faces[i], cache.masks[i], em_mask, xseg = crop_to_model(image, meta, face_type, resolution,
                                                                              eyes_mouth=eyes_mouth)
                if em_mask is not None:
                    cache.em_masks[i] = em_mask
                cache.yaws[i] = meta.yaw
                if _wider(face_type, meta.face_type):
                    wider.add(meta.face_type)
                return xseg

            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                for done, xseg in enumerate(pool.map(load, range(len(paths))), 1):
                    cache.xseg_masks += xseg
                    progress(Progress(label, done, len(paths)))
            cache.faces.flush()
            cache.masks.flush()
            if cache.em_masks is not None:
                cache.em_masks.flush()
            cache.yaws.tofile(Path(tmp) / "yaws.f64")
        except BaseException:
            cache.close()
            raise
        if wider:
            log.warning("%s: faces are %s but the model is %s: the model's crop shows black borders",
                        folder, "/".join(sorted(wider)), face_type)
        log.info("%s", mask_summary(folder, len(paths), cache.xseg_masks))
        return cache

    def __len__(self) -> int:
        return self.spec.count

    def close(self) -> None:
        if self._owner:
            shutil.rmtree(self.spec.folder, ignore_errors=True)


def mask_summary(folder: Path, faces: int, xseg: int) -> str:
    """The training log's line saying where a faceset's masks come from, e.g. "data_src/aligned masks: XSeg on
    412 of 430 faces, hull+polygons on 18"."""
    where = "/".join(Path(folder).parts[-2:])
    if xseg == 0:
        return f"{where} masks: hull+polygons on all {faces} faces (no XSeg mask applied)"
    if xseg == faces:
        return f"{where} masks: XSeg on all {faces} faces"
    return f"{where} masks: XSeg on {xseg} of {faces} faces, hull+polygons on {faces - xseg}"


_CACHE_PREFIX = "facelab-faces-"


def _remove_orphan_caches() -> None:
    """Delete caches left in the temp folder by trainers that were killed (their pid is in the name)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_CACHE_PREFIX}*-*"):
        pid = folder.name[len(_CACHE_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _wider(model_type: str, file_type: str) -> bool:
    order = [t.value for t in FaceType]
    return order.index(model_type) > order.index(file_type)


# -- batches ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedSettings:
    """How batches are drawn and augmented. ``random_flip`` mirrors both sides unless ``src_flip`` says otherwise
    for src (SAEHD flips dst only by default); ``hsv_power`` and ``colour_transfer`` recolour src faces only."""

    batch_size: int
    random_flip: bool = True
    sort_by_yaw: bool = False
    src_scale_mod: float = 0.0
    src_flip: bool | None = None
    random_warp: bool = True
    uniform_yaw: bool = False
    hsv_power: float = 0.0
    colour_transfer: str = "none"
    eyes_mouth: bool = False


def _pick_indices(src: FaceCache, dst: FaceCache, settings: FeedSettings, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    n = settings.batch_size
    if settings.uniform_yaw:
        dst_idx = uniform_yaw_indices(dst.yaws, n, rng)
    else:
        dst_idx = rng.integers(len(dst), size=n)
    if settings.sort_by_yaw:
        src_idx = pick_src_by_yaw(src.yaws, dst.yaws[dst_idx], rng)
    elif settings.uniform_yaw:
        src_idx = uniform_yaw_indices(src.yaws, n, rng)
    else:
        src_idx = rng.integers(len(src), size=n)
    return src_idx, dst_idx


def _src_colours(face: np.ndarray, mask: np.ndarray, dst: FaceCache, settings: FeedSettings,
                 rng: np.random.Generator) -> np.ndarray:
    if settings.colour_transfer != "none":
        face = transfer_colours(face, dst.faces[rng.integers(len(dst))], mask, settings.colour_transfer)
    return random_hsv(face, rng, settings.hsv_power)


def make_batch(src: FaceCache, dst: FaceCache, settings: FeedSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One augmented batch (see the module docstring for keys, shapes and dtypes)."""
    if settings.eyes_mouth and (src.em_masks is None or dst.em_masks is None):
        raise ValueError("eyes_mouth batches need caches built with eyes_mouth=True")
    src_idx, dst_idx = _pick_indices(src, dst, settings, rng)
    src_flip = settings.random_flip if settings.src_flip is None else settings.src_flip
    batch: dict[str, Any] = {}
    for side, cache, idx, scale_mod, flip in (("src", src, src_idx, settings.src_scale_mod, src_flip),
                                              ("dst", dst, dst_idx, 0.0, settings.random_flip)):
        parts = []
        for i in idx:
            face, mask = cache.faces[i], cache.masks[i]
            if side == "src":
                face = _src_colours(face, mask, dst, settings, rng)
            masks = np.dstack([mask, cache.em_masks[i]]) if settings.eyes_mouth else mask
            parts.append(augment(face, masks, rng, scale_mod=scale_mod, flip=flip and rng.random() < 0.5,
                                 warp=settings.random_warp))
        batch[side] = np.stack([p[0] for p in parts])
        batch[f"{side}_target"] = np.stack([p[1] for p in parts])
        target_masks = np.stack([p[2] for p in parts])
        if settings.eyes_mouth:
            batch[f"{side}_mask"], batch[f"{side}_em_mask"] = target_masks[..., 0], target_masks[..., 1]
        else:
            batch[f"{side}_mask"] = target_masks
    return batch


def _worker(src_spec: CacheSpec, dst_spec: CacheSpec, settings: FeedSettings, seed: int,
            out: mp.Queue, stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the trainer, which then stops us
    parent = _exit_with_parent()
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
                if os.getppid() != parent:  # the trainer died (kill -9 never sets ``stop``)
                    return


def _exit_with_parent() -> int:
    """Have Linux kill this worker when the trainer dies; returns the trainer's pid (polled elsewhere)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    parent = mp.parent_process()
    if parent is None or os.getppid() != parent.pid:  # it died before the call above
        os._exit(0)
    return parent.pid


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
