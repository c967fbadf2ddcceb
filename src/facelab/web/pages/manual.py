"""Manual extraction / manual fix page: the user places a square on each frame, the server predicts the landmarks
live and, on Enter, cuts the aligned face exactly as ``facelab extract --detector manual`` would.

Coordinates are frame pixels with the origin at the top-left corner of the top-left pixel (as in
``facelab.types``); a box is (x0, y0, x1, y1), right/bottom exclusive. The browser maps screen → frame itself.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facelab.errors import InputError, OptionError
from facelab.extract import runner
from facelab.extract.debug import draw_debug
from facelab.extract.extractor import Extractor, Face
from facelab.extract.frames import IMAGE_SUFFIXES, list_frames, read_image
from facelab.geometry.alignment import face_square_in_frame
from facelab.io.faceimage import list_faces, read_meta, write_face
from facelab.io.files import write_bytes_atomic
from facelab.types import FaceMeta, FaceType
from facelab.web.forms import json_body
from facelab.web.pages import PAGES, Page
from facelab.workspace import Workspace

if TYPE_CHECKING:
    from facelab.web.server import UiContext

SIDES = ("src", "dst")
MODES = {"need": "frames that need it", "all": "every frame"}
DEFAULT_FACE_TYPE, DEFAULT_IMAGE_SIZE = FaceType.FULL.value, 256
IMAGE_SIZES = (64, 2048)  # as EXTRACT_OPTIONS' image_size bounds
MIN_BOX = 8.0  # px: dlib gives nonsense below this
MAX_BOXES = 16  # faces placed on one frame at once
PREVIEW_SIZE = 160  # px: the aligned face shown beside the frame
JPEG_QUALITY = 95


# -- what to walk ----------------------------------------------------------------------------------------------


def check_side(side: str) -> str:
    if side not in SIDES:
        raise InputError(f"no such side {side!r}", fix="choose src or dst")
    return side


def debug_dir_of(ws: Workspace, side: str) -> Path:
    """Where extract writes a side's debug images (the CLI's choice: aligned_debug/ inside data_<side>/)."""
    return ws.aligned_debug if side == "dst" else ws.frames(side) / "aligned_debug"


def frame_names(ws: Workspace, side: str) -> list[str]:
    """The side's frame files, sorted; InputError when there are none (faces extracted straight from a video)."""
    names = [p.name for p in list_frames(ws.frames(side))]
    if not names:
        raise InputError(f"no frame images in data_{side}/", path=ws.frames(side),
                         fix=f"extract the frames first: facelab video extract {side}")
    return names


def frames_needing_work(ws: Workspace, side: str, names: list[str]) -> dict[str, str]:
    """{frame name: why it needs manual work} for the frames among ``names`` where no face was found, whose
    debug image the user deleted, or that have no face left in aligned/ (the user moved or deleted them)."""
    aligned = ws.aligned(side)
    record = runner.read_log(aligned)
    no_face = set(record.get("no_face", []))
    revisit = set(runner.frames_to_revisit(aligned, debug_dir_of(ws, side)))
    faceless = set(runner.frames_without_faces(names, aligned))
    reasons = {}
    for name in names:
        if name in no_face:
            reasons[name] = "no face found"
        elif name in revisit:
            reasons[name] = "debug image deleted"
        elif name in faceless:
            reasons[name] = "no face in aligned/"
    return reasons


def extract_settings(aligned_dir: Path) -> dict:
    """Face type and image size the last extract run of ``aligned_dir`` used (full / 256 when unknown)."""
    settings = runner.read_log(aligned_dir).get("settings", {})
    face_type = settings.get("face_type")
    size = settings.get("image_size")
    return {"face_type": face_type if face_type in {t.value for t in FaceType} else DEFAULT_FACE_TYPE,
            "image_size": int(size) if isinstance(size, int) and IMAGE_SIZES[0] <= size <= IMAGE_SIZES[1]
            else DEFAULT_IMAGE_SIZE}


def frame_list(ws: Workspace, side: str, mode: str) -> dict:
    """The frames to walk: [{"name", "reason"}], with the defaults for face type and image size."""
    check_side(side)
    if mode not in MODES:
        raise InputError(f"no such mode {mode!r}", fix="choose need (frames that need it) or all (every frame)")
    names = frame_names(ws, side)
    reasons = frames_needing_work(ws, side, names)
    walk = names if mode == "all" else [n for n in names if n in reasons]
    by_hand = runner.read_log(ws.aligned(side)).get("manual", {})  # frames placed by hand in earlier sessions
    frames = [{"name": n, "reason": reasons.get(n) or (f"placed by hand earlier ({by_hand[n]})" if n in by_hand
                                                        else "")} for n in walk]
    return {"side": side, "mode": mode, "folder": f"data_{side}", "total_frames": len(names), "frames": frames,
            **extract_settings(ws.aligned(side))}


# -- one frame -------------------------------------------------------------------------------------------------


def frame_path(ws: Workspace, side: str, name: str) -> Path:
    """The frame file ``name`` of a side (a bare file name; InputError when it is not one of its frames)."""
    check_side(side)
    path = ws.frames(side) / name
    if (not name or "/" in name or "\\" in name or name.startswith(".") or not path.is_file()
            or path.suffix.lower() not in IMAGE_SUFFIXES):
        raise InputError(f"no frame {name!r} in data_{side}/", fix="reload the page to get the current frame list")
    return path


def faces_of(aligned_dir: Path, name: str) -> list[Path]:
    """Face files cut from frame ``name`` (``<stem>_<n>.*``)."""
    stem = Path(name).stem
    files = list_faces(aligned_dir) if aligned_dir.is_dir() else []
    return [p for p in files if p.stem.rsplit("_", 1)[0] == stem]


def parse_box(values) -> tuple[float, float, float, float]:
    """A user box (x0, y0, x1, y1) in frame pixels; OptionError when it is not 4 finite numbers of a real box."""
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise OptionError("a box is 4 numbers [x0, y0, x1, y1]") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise OptionError(f"the square must be at least {MIN_BOX:g} px wide", fix="make it bigger with the wheel")
    return x0, y0, x1, y1


def parse_settings(body: dict) -> tuple[str, int]:
    face_type = body.get("face_type", DEFAULT_FACE_TYPE)
    if face_type not in {t.value for t in FaceType}:
        raise OptionError(f"no such face type {face_type!r}", fix=f"choose one of {[t.value for t in FaceType]}")
    try:
        size = int(body.get("image_size", DEFAULT_IMAGE_SIZE))
    except (TypeError, ValueError):
        raise OptionError("image size must be a whole number") from None
    if not IMAGE_SIZES[0] <= size <= IMAGE_SIZES[1]:
        raise OptionError(f"image size must be {IMAGE_SIZES[0]}–{IMAGE_SIZES[1]} px")
    return face_type, size


def face_outline(meta: FaceMeta) -> dict:
    """What the page draws for a face: its 68 landmarks, the aligned square's corners and its box, in frame px."""
    return {"landmarks": np.round(meta.source_landmarks, 2).tolist(),
            "square": np.round(face_square_in_frame(meta.face_from_image, meta.image_size), 2).tolist(),
            "rect": [round(v, 2) for v in meta.source_rect]}


def preview_url(image: np.ndarray) -> str:
    """The aligned face as a small JPEG data URL (at most PREVIEW_SIZE px)."""
    if image.shape[0] > PREVIEW_SIZE:
        image = cv2.resize(image, (PREVIEW_SIZE, PREVIEW_SIZE), interpolation=cv2.INTER_AREA)
    return "data:image/jpeg;base64," + base64.b64encode(cv2.imencode(".jpg", image)[1].tobytes()).decode()


def free_trash(base: Path, names: list[str]) -> Path:
    """``base``, or ``base-2``, ``base-3`` … : the first trash folder where none of ``names`` exists yet, so a
    face moved there never replaces one moved before (two accepts of a frame within a second)."""
    folder, n = base, 1
    while any((folder / name).exists() for name in names):
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def place_faces(ws: Workspace, side: str, name: str, frame: np.ndarray, faces: list[Face], trash: Path) -> dict:
    """Write the faces placed on one frame as ``<stem>_<n>.jpg`` in data_<side>/aligned, after moving the frame's
    earlier faces to ``trash`` (never deleted); redraw its debug image (dst, or src when its folder exists) and
    update the extract log so the frame no longer counts as "no face"."""
    aligned = ws.aligned(side)
    moved = runner.move_faces_of(aligned, trash, [name]) if faces_of(aligned, name) else 0
    written = []
    for image, meta in faces:
        path = aligned / f"{Path(name).stem}_{meta.face_index}.jpg"
        write_face(path, image, meta, quality=JPEG_QUALITY)
        written.append(path)
    debug_dir = debug_dir_of(ws, side)
    debug = None
    if side == "dst" or debug_dir.is_dir():
        debug = debug_dir / f"{Path(name).stem}.jpg"
        ok, buf = cv2.imencode(".jpg", draw_debug(frame, [m for _, m in faces]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise InputError("could not encode the debug image", path=debug)
        write_bytes_atomic(debug, buf.tobytes())
    runner.record_manual_faces(aligned, name, len(faces), debug_image=debug is not None)
    return {"written": written, "moved": moved, "debug": debug}


# -- the routes ------------------------------------------------------------------------------------------------


class _Manual:
    """Route handlers over one UiContext; keeps the last decoded frame so live landmarks stay fast."""

    def __init__(self, ctx: UiContext):
        self.ctx = ctx
        self.write_lock = threading.Lock()  # accepts are read-move-write-log sequences
        self._frame_lock = threading.Lock()
        self._frame: tuple[Path, float, np.ndarray] | None = None

    def frame(self, side: str, name: str) -> tuple[Path, np.ndarray]:
        path = frame_path(self.ctx.workspace, side, name)
        self.ctx.path(f"data_{side}/{name}")  # PathRefused for a link leading out of the workspace
        stamp = path.stat().st_mtime
        with self._frame_lock:
            if self._frame is not None and self._frame[:2] == (path, stamp):
                return path, self._frame[2]
        read = read_image(path)
        if read.image is None:
            raise InputError(f"cannot read this frame: {read.error}", path=path.name, fix="skip it with Space")
        with self._frame_lock:
            self._frame = (path, stamp, read.image)
        return path, read.image

    def faces(self, body: dict) -> tuple[str, str, Path, np.ndarray, list[Face]]:
        """Cut the faces of the body's boxes on its frame (as the CLI's manual detector does)."""
        side, name = check_side(str(body.get("side", ""))), str(body.get("frame", ""))
        boxes = [parse_box(b) for b in body.get("boxes") or []]
        if not boxes:
            raise OptionError("no square given", fix="move the square over the face")
        if len(boxes) > MAX_BOXES:
            raise OptionError(f"at most {MAX_BOXES} faces per frame")
        face_type, size = parse_settings(body)
        path, frame = self.frame(side, name)
        extractor = Extractor("manual", face_type=face_type, image_size=size)  # models are cached by extract
        return side, name, path, frame, extractor.faces_in_boxes(frame, boxes, name)

    def walk(self, request: Request) -> JSONResponse:
        query = request.query_params
        return JSONResponse(frame_list(self.ctx.workspace, query.get("side", "dst"), query.get("mode", "need")))

    def existing(self, request: Request) -> JSONResponse:
        """The faces a frame already has (what Enter would move to the trash)."""
        side, name = request.query_params.get("side", ""), request.query_params.get("frame", "")
        frame_path(self.ctx.workspace, side, name)
        out = []
        for path in faces_of(self.ctx.workspace.aligned(side), name):
            try:
                meta = read_meta(path)
            except InputError:
                continue  # a broken face file is the faceset page's business; Enter moves it away all the same
            out.append({"file": self.ctx.relative(path), **face_outline(meta)})
        return JSONResponse({"frame": name, "faces": out})

    async def landmarks(self, request: Request) -> JSONResponse:
        return JSONResponse(await _in_thread(self._landmarks, await json_body(request)))

    def _landmarks(self, body: dict) -> dict:
        start = time.perf_counter()
        *_, faces = self.faces(body)
        image, meta = faces[0]
        return {**face_outline(meta), "preview": preview_url(image),
                "ms": round((time.perf_counter() - start) * 1000, 1)}

    async def accept(self, request: Request) -> JSONResponse:
        return JSONResponse(await _in_thread(self._accept, await json_body(request)))

    def _accept(self, body: dict) -> dict:
        side, name, _, frame, faces = self.faces(body)
        ws = self.ctx.workspace
        with self.write_lock:
            trash = free_trash(ws.frames(side) / "aligned_trash" / time.strftime("manual-%Y%m%d-%H%M%S"),
                               [p.name for p in faces_of(ws.aligned(side), name)])
            done = place_faces(ws, side, name, frame, faces, trash)
        return {"frame": name, "faces": [self.ctx.relative(p) for p in done["written"]], "moved": done["moved"],
                "trash": self.ctx.relative(trash) if done["moved"] else None,
                "debug": self.ctx.relative(done["debug"]) if done["debug"] else None,
                "outlines": [face_outline(m) for _, m in faces]}


async def _in_thread(function, *args):
    """Run blocking work (dlib, file writes) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def routes(ctx: UiContext) -> list[Route]:
    manual = _Manual(ctx)
    return [Route("/api/manual/frames", manual.walk),
            Route("/api/manual/faces", manual.existing),
            Route("/api/manual/landmarks", manual.landmarks, methods=["POST"]),
            Route("/api/manual/accept", manual.accept, methods=["POST"])]


PAGE = PAGES.register("manual")(Page(
    "manual", "Manual extraction",
    "Place faces by hand on the frames where detection failed (or on every frame)", routes))
