"""Mask editor page (the seed's step 5.4): include/exclude polygons drawn on aligned faces, kept in their metadata.

The mask the polygons make is ``facelab.train.samples.face_mask``: the landmark hull, plus the include polygons,
minus the exclude polygons (includes are filled first, then excludes). It is what XSeg learns from a labelled face,
and what training uses on a face with no applied XSeg mask (``train.samples.crop_to_model``; a face with one trains
on that, and the page says so). The preview endpoint draws it with that very function, so what the page shows is
what training gets.

Polygons travel as ``{"include": [[[x, y], ...], ...], "exclude": [...]}`` in aligned-face pixels, origin at
the top-left pixel's corner (``facelab.types``). Skipped faces move to ``aligned_skipped/`` and confirmed ones to
``aligned_confirmed/`` beside the folder they are in, by a rename; nothing is deleted or overwritten.

When the workspace has a trained XSeg (MODEL_DIR/xseg), the page overlays its prediction on each face and can walk
a folder "least sure first" (``uncertainty``), so the user labels the faces the segmenter gets wrong. Predictions
are made here, on the server, once per face file version and XSeg save (``Predictions``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facelab.errors import InputError, MetadataError, OutputError
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.progress import Progress, ProgressCallback
from facelab.train.checkpoint import ModelFiles
from facelab.train.samples import face_mask
from facelab.types import MASK_KINDS
from facelab.web.folders import checked_face, face_folders, is_faceset_folder, move_no_overwrite, read_shown_meta
from facelab.web.forms import posted
from facelab.web.pages import PAGES, Page
from facelab.xseg.options import MODEL_NAME as XSEG_NAME
from facelab.xseg.stored import stored_mask

SKIPPED = "aligned_skipped"
CONFIRMED = "aligned_confirmed"
MAX_POINTS = 20000  # all polygons of one face together; keeps the metadata far below the JPEG segment limit
PREDICT_BATCH = 16  # faces per segmenter call when ordering a folder
MAX_CACHED = 20000  # predictions kept (a 256 px mask is ~64 kB): beyond that the cache starts again


# -- pure helpers ---------------------------------------------------------------------------------------


def parse_polygons(value: Any, size: int) -> dict[str, list]:
    """The browser's polygons checked and tidied: ``{"include": [...], "exclude": [...]}`` with each polygon a
    list of ≥ 3 [x, y] float points, clamped to the (size × size) face and rounded to 0.01 px; ``{}`` when there
    are none (the FaceMeta default). InputError on anything malformed."""
    if not isinstance(value, dict) or set(value) - set(MASK_KINDS):
        raise InputError("polygons must be an object with 'include' and 'exclude' lists")
    out: dict[str, list] = {}
    total = 0
    for kind in MASK_KINDS:
        polys = value.get(kind, [])
        if not isinstance(polys, list):
            raise InputError(f"'{kind}' polygons must be a list")
        out[kind] = []
        for poly in polys:
            if not isinstance(poly, list) or len(poly) < 3:
                raise InputError(f"an {kind} polygon needs at least 3 points", fix="close polygons of 3+ points")
            out[kind].append([_point(p, size) for p in poly])
            total += len(poly)
    if total > MAX_POINTS:
        raise InputError(f"too many polygon points ({total} > {MAX_POINTS})", fix="simplify the polygons")
    return out if out["include"] or out["exclude"] else {}


def _point(p: Any, size: int) -> list[float]:
    if (not isinstance(p, (list, tuple)) or len(p) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p)):
        raise InputError(f"a polygon point must be [x, y] numbers, got {p!r}")
    return [round(min(max(float(v), 0.0), float(size)), 2) for v in p]


def training_mask(landmarks: np.ndarray, size: int, polygons: dict[str, list]) -> np.ndarray:
    """(size, size) uint8 mask, 0 or 255 (anti-aliased edges): exactly the mask training derives from a face
    with these ``landmarks`` (68, 2) and ``polygons`` (see the module docstring)."""
    return face_mask(landmarks, size, polygons.get("include", []), polygons.get("exclude", []))


def hull_points(landmarks: np.ndarray) -> list[list[float]]:
    """The convex hull of the landmarks (68, 2) as [[x, y], ...], the outline of the mask without polygons."""
    points = np.asarray(landmarks, np.float32).reshape(-1, 1, 2)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in cv2.convexHull(points).reshape(-1, 2)]


def uncertainty(masks: np.ndarray) -> np.ndarray:
    """(N,) float64 in [0, 1]: how unsure the segmenter is about each of ``masks`` (N, S, S) (probabilities of
    "face" in [0, 1]): the mean over the face square of 2·min(p, 1 − p), 0 where every pixel is surely face or
    surely not, 1 where every pixel is a coin toss. Faces it half-knows (an occluder it has not learnt, a pose it
    has not seen) score highest."""
    p = np.asarray(masks, np.float64).reshape(len(masks), -1)
    return 2 * np.minimum(p, 1 - p).mean(axis=1) if p.size else np.zeros(len(masks))


def beside(face: Path, folder_name: str) -> Path:
    """Where ``face`` goes when moved to ``folder_name`` beside its folder: data_dst/aligned/a.jpg →
    data_dst/aligned_skipped/a.jpg."""
    return face.parent.parent / folder_name / face.name


def move_beside(face: Path, folder_name: str, dry_run: bool = False) -> Path:
    """Move ``face`` into ``folder_name`` beside its folder (nothing to do when it is already there); never
    overwrites: OutputError when a face of that name is there. ``dry_run`` only checks. Returns the new path."""
    target = beside(face, folder_name)
    if target.parent.resolve() == face.parent.resolve():
        return face
    if dry_run:
        if target.exists():
            raise OutputError(f"{folder_name}/ already holds a face named {face.name}", path=target.parent,
                              fix="rename or move that file first; nothing is overwritten")
        return target
    return move_no_overwrite(face, target)


# -- the segmenter's predictions -------------------------------------------------------------------------


@dataclass
class Predictions:
    """The workspace's XSeg (MODEL_DIR/xseg), loaded once and again when a new save replaces its weights, and
    its predictions kept per face file version: ``{(path, mtime_ns, size): ((S, S) uint8 mask, uncertainty)}``.
    One lock: the net runs one batch at a time, whichever request or job asks."""

    model_dir: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    stamp: tuple | None = None
    segmenter: Any = None
    cache: dict[tuple, tuple[np.ndarray, float]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        from facelab.xseg.segmenter import xseg_folder

        return xseg_folder(self.model_dir)

    def info(self) -> dict[str, Any]:
        """What the page says about the segmenter: trained or not, its iteration, and the line to show."""
        with self.lock:
            segmenter = self._load(required=False)
        if segmenter is None:
            return {"trained": False, "message": f"No trained XSeg in {self.model_dir.name}/xseg: train one with "
                    "`facelab xseg train` (labels drawn here make it better) to see its masks here."}
        return {"trained": True, "iteration": segmenter.iteration, "resolution": segmenter.resolution,
                "message": f"XSeg at iteration {segmenter.iteration}"}

    def check(self) -> None:
        """InputError (saying how to train one) when the workspace has no trained XSeg."""
        with self.lock:
            self._load(required=True)

    def predict(self, paths: list[Path], progress: ProgressCallback | None = None,
                problems: dict[Path, str] | None = None) -> dict[Path, tuple[np.ndarray, float]]:
        """((S, S) uint8 mask 0-255, uncertainty) of each face file. InputError when no XSeg is trained; a face
        that cannot be read (damaged, or gone meanwhile) raises, or with ``problems`` is left out and named there.
        The lock is taken per batch, so one face's overlay waits for one batch of a folder's order, not all."""
        found: dict[Path, tuple[np.ndarray, float]] = {}
        for start in range(0, len(paths), PREDICT_BATCH):
            with self.lock:
                self._load(required=True)
                found.update(self._predict_batch(paths[start : start + PREDICT_BATCH], problems))
            if progress is not None:
                progress(Progress("segmenter", min(start + PREDICT_BATCH, len(paths)), len(paths)))
        return found

    def _predict_batch(self, paths: list[Path], problems: dict[Path, str] | None
                       ) -> dict[Path, tuple[np.ndarray, float]]:
        """The batch's answers, from the cache or the net (call with the lock held)."""
        found, by_size = {}, {}
        for path in paths:
            try:
                key = _version(path)
                if key in self.cache:
                    found[path] = self.cache[key]
                    continue
                image = read_face(path)[0]
            except MetadataError as err:
                if problems is None:
                    raise
                problems[path] = err.message
                continue
            except OSError:  # moved or deleted since it was listed
                if problems is None:
                    raise InputError("no such face file", path=path.name,
                                     fix="reload the folder; the face may have moved") from None
                problems[path] = "the face file is gone (moved meanwhile)"
                continue
            by_size.setdefault(image.shape, []).append((path, key, image))
        if len(self.cache) + len(paths) > MAX_CACHED:
            self.cache.clear()
        for group in by_size.values():
            masks = self.segmenter.predict(np.stack([image for _, _, image in group]))
            for (path, key, _), mask, score in zip(group, masks, uncertainty(masks)):
                found[path] = self.cache[key] = (np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8), float(score))
        return found

    def _load(self, required: bool):
        """The segmenter, (re)loaded when its weights changed; None (or InputError when ``required``) when there
        is none. Call with the lock held."""
        from facelab.xseg.segmenter import Segmenter

        weights = ModelFiles(self.folder, XSEG_NAME).weights
        try:
            stat = weights.stat()
        except (FileNotFoundError, NotADirectoryError):
            self.stamp, self.segmenter = None, None
            self.cache.clear()
            if required:
                raise InputError(f"no trained XSeg in {self.model_dir.name}/xseg, so there is no prediction to show",
                                 fix="train one with `facelab xseg train`") from None
            return None
        stamp = (str(weights), stat.st_mtime_ns, stat.st_size)
        if stamp != self.stamp:
            self.segmenter = Segmenter.load(self.folder, "cpu")
            self.stamp = stamp
            self.cache.clear()
        return self.segmenter


def _version(path: Path) -> tuple:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


# -- routes ---------------------------------------------------------------------------------------------


def _face_path(ctx, rel: Any) -> Path:
    """A face file sent by the browser: inside the workspace, a plain face file of a faceset folder (never a
    frame, a link or a file at the workspace's own level)."""
    if not isinstance(rel, str) or not rel:
        raise InputError("no face given")
    return checked_face(ctx.workspace.root, ctx.path(rel))


def _faceset(ctx, rel: Any) -> tuple[Path, list[Path], list[dict]]:
    """(folder, the faces the editor can open, the others with why: a link, bad metadata)."""
    folder = ctx.path(rel if isinstance(rel, str) else "")
    if folder == ctx.workspace.root.resolve() or not folder.is_dir() or not is_faceset_folder(folder):
        raise InputError("not a folder of aligned faces", path=rel if isinstance(rel, str) else None,
                         fix="pick one in the folder list")
    good, skipped = [], []
    for path in list_faces(folder):
        meta, problem = read_shown_meta(path)
        if meta is None:
            skipped.append({"name": path.name, "problem": problem})
        else:
            good.append(path)
    return folder, good, skipped


def _segmenter_routes(ctx) -> list[Route]:
    """The trained XSeg's view of the faces: whether there is one, its mask of a face, least sure first."""
    predictions = Predictions(ctx.workspace.model)

    def segmenter(_request: Request) -> Response:
        return JSONResponse(predictions.info())

    def prediction(request: Request) -> Response:
        """The segmenter's mask of one face: an 8-bit grey PNG at the face's size (255 = surely face)."""
        path = _face_path(ctx, request.query_params.get("path"))
        mask, score = predictions.predict([path])[path]
        return Response(cv2.imencode(".png", mask)[1].tobytes(), media_type="image/png",
                        headers={"Cache-Control": "no-store", "X-Facelab-Uncertainty": f"{score:.6f}"})

    def order(body: dict) -> dict:
        """Start a job ordering the folder's faces least sure first; its result: ``faces`` and their ``scores``
        (``uncertainty``, highest first; equal scores keep the name order) and the faces left out with why."""
        folder, good, skipped = _faceset(ctx, body.get("folder"))
        predictions.check()  # no XSeg: the one-line answer now, not from inside the job

        def work(progress: ProgressCallback) -> dict[str, Any]:
            problems: dict[Path, str] = {}
            found = predictions.predict(good, progress, problems)
            scored = sorted(((path, found[path][1]) for path in good if path in found), key=lambda item: -item[1])
            return {"folder": ctx.relative(folder), "faces": [ctx.relative(p) for p, _ in scored],
                    "scores": [round(score, 6) for _, score in scored],
                    "skipped": skipped + [{"name": p.name, "problem": why} for p, why in problems.items()]}

        return {"job": ctx.jobs.start(work).id}

    return [Route("/api/masks/segmenter", segmenter), Route("/api/masks/prediction", prediction),
            Route("/api/masks/order", posted(order), methods=["POST"])]


def routes(ctx) -> list[Route]:
    def face_path(rel: Any) -> Path:
        return _face_path(ctx, rel)

    def folders(_request: Request) -> Response:
        return JSONResponse({"folders": [{"path": ctx.relative(p), "faces": len(list_faces(p))}
                                         for p in face_folders(ctx.workspace.root)]})

    def faces(request: Request) -> Response:
        folder, good, skipped = _faceset(ctx, request.query_params.get("folder", ""))
        return JSONResponse({"folder": ctx.relative(folder), "faces": [ctx.relative(p) for p in good],
                             "skipped": skipped})

    def face(request: Request) -> Response:
        path = face_path(request.query_params.get("path"))
        meta = read_meta(path)
        polys = meta.mask_polygons or {}
        return JSONResponse({
            "path": ctx.relative(path), "size": meta.image_size, "face_type": meta.face_type,
            "hull": hull_points(meta.landmarks), "version": path.stat().st_mtime_ns,
            "polygons": {kind: polys.get(kind, []) for kind in MASK_KINDS},
            "xseg_applied": stored_mask(meta) is not None,  # then training uses that mask, not the polygons'
        })

    def preview(body: dict) -> Response:
        meta = read_meta(face_path(body.get("path")))
        mask = training_mask(meta.landmarks, meta.image_size, parse_polygons(body.get("polygons"), meta.image_size))
        return Response(cv2.imencode(".png", mask)[1].tobytes(), media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    def save(body: dict) -> dict:
        path = face_path(body.get("path"))
        meta = read_meta(path)
        meta.mask_polygons = parse_polygons(body.get("polygons"), meta.image_size)
        confirm = body.get("confirm") is True
        if confirm:
            move_beside(path, CONFIRMED, dry_run=True)  # refuse before writing anything
        write_meta(path, meta)  # atomic, and the pixel bytes stay as they are
        if confirm:
            path = move_beside(path, CONFIRMED)
        return {"path": ctx.relative(path), "polygons": meta.mask_polygons}

    def skip(body: dict) -> dict:
        return {"path": ctx.relative(move_beside(face_path(body.get("path")), SKIPPED))}

    return [Route("/api/masks/folders", folders), Route("/api/masks/faces", faces),
            Route("/api/masks/face", face), Route("/api/masks/preview", posted(preview), methods=["POST"]),
            *_segmenter_routes(ctx),
            Route("/api/masks/save", posted(save), methods=["POST"]),
            Route("/api/masks/skip", posted(skip), methods=["POST"])]


PAGE = PAGES.register("masks")(Page(
    "masks", "Mask editor",
    "Draw include/exclude polygons on aligned faces; they shape the mask training uses", routes))
