"""Mask editor page (the seed's step 5.4): include/exclude polygons drawn on aligned faces, kept in their metadata.

The mask training uses is ``facelab.train.samples.face_mask``: the landmark hull, plus the include polygons, minus
the exclude polygons (includes are filled first, then excludes). The preview endpoint draws it with that very
function, so what the page shows is what training gets.

Polygons travel as ``{"include": [[[x, y], ...], ...], "exclude": [...]}`` in aligned-face pixels, origin at
the top-left pixel's corner (``facelab.types``). Skipped faces move to ``aligned_skipped/`` and confirmed ones to
``aligned_confirmed/`` beside the folder they are in, by a rename; nothing is deleted or overwritten.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facelab.errors import InputError, OutputError
from facelab.io.faceimage import list_faces, read_meta, write_meta
from facelab.train.samples import face_mask
from facelab.types import MASK_KINDS
from facelab.web.folders import checked_face, face_folders, is_faceset_folder, move_no_overwrite, read_shown_meta
from facelab.web.forms import posted
from facelab.web.pages import PAGES, Page

SKIPPED = "aligned_skipped"
CONFIRMED = "aligned_confirmed"
MAX_POINTS = 20000  # all polygons of one face together; keeps the metadata far below the JPEG segment limit


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


# -- routes ---------------------------------------------------------------------------------------------


def routes(ctx) -> list[Route]:
    def face_path(rel: Any) -> Path:
        """A face file sent by the browser: inside the workspace, a plain face file of a faceset folder (never a
        frame, a link or a file at the workspace's own level)."""
        if not isinstance(rel, str) or not rel:
            raise InputError("no face given")
        return checked_face(ctx.workspace.root, ctx.path(rel))

    def folders(_request: Request) -> Response:
        return JSONResponse({"folders": [{"path": ctx.relative(p), "faces": len(list_faces(p))}
                                         for p in face_folders(ctx.workspace.root)]})

    def faces(request: Request) -> Response:
        """The folder's faces the editor can open; the others are listed apart with why (a link, bad metadata)."""
        folder = ctx.path(request.query_params.get("folder", ""))
        if folder == ctx.workspace.root.resolve() or not folder.is_dir() or not is_faceset_folder(folder):
            raise InputError("not a folder of aligned faces", path=request.query_params.get("folder"),
                             fix="pick one in the folder list")
        where, good, skipped = ctx.relative(folder), [], []
        for path in list_faces(folder):
            meta, problem = read_shown_meta(path)
            if meta is None:
                skipped.append({"name": path.name, "problem": problem})
            else:
                good.append(f"{where}/{path.name}")
        return JSONResponse({"folder": where, "faces": good, "skipped": skipped})

    def face(request: Request) -> Response:
        path = face_path(request.query_params.get("path"))
        meta = read_meta(path)
        polys = meta.mask_polygons or {}
        return JSONResponse({
            "path": ctx.relative(path), "size": meta.image_size, "face_type": meta.face_type,
            "hull": hull_points(meta.landmarks), "version": path.stat().st_mtime_ns,
            "polygons": {kind: polys.get(kind, []) for kind in MASK_KINDS},
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
            Route("/api/masks/save", posted(save), methods=["POST"]),
            Route("/api/masks/skip", posted(skip), methods=["POST"])]


PAGE = PAGES.register("masks")(Page(
    "masks", "Mask editor",
    "Draw include/exclude polygons on aligned faces; they shape the mask training uses", routes))
