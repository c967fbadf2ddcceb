"""Manual extraction / manual fix page: the user places a square on each frame, the server predicts the landmarks
live and, on Enter, cuts the aligned face exactly as ``facelab extract --detector manual`` would.

The stage logic (which frames to walk, cutting faces from squares, writing them) is
``facelab.extract.manual_place``; this module adds the routes and keeps the last decoded frame. The browser maps
screen → frame pixels itself (coordinates as in ``facelab.types``).
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from facelab.errors import FacelabError, InputError
from facelab.extract import manual_place as placing
from facelab.extract.frames import read_image
from facelab.geometry.alignment import face_square_in_frame
from facelab.io.faceimage import read_meta
from facelab.types import FaceMeta
from facelab.web.forms import posted
from facelab.web.pages import PAGES, Page

if TYPE_CHECKING:
    from facelab.web.server import UiContext

PREVIEW_SIZE = 160  # px: the aligned face shown beside the frame


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


class _Manual:
    """Route handlers over one UiContext; keeps the last decoded frame so live landmarks stay fast."""

    def __init__(self, ctx: UiContext):
        self.ctx = ctx
        self.write_lock = threading.Lock()  # accepts are read-move-write-log sequences
        self._frame_lock = threading.Lock()
        self._frame: tuple[Path, float, np.ndarray] | None = None

    def frame(self, side, name) -> np.ndarray:
        path = placing.frame_path(self.ctx.workspace, side, name)
        self.ctx.path(f"data_{side}/{name}")  # PathRefused for a link leading out of the workspace
        stamp = path.stat().st_mtime
        with self._frame_lock:
            if self._frame is not None and self._frame[:2] == (path, stamp):
                return self._frame[2]
        read = read_image(path)
        if read.image is None:
            raise InputError(f"cannot read this frame: {read.error}", path=path.name, fix="skip it with Space")
        with self._frame_lock:
            self._frame = (path, stamp, read.image)
        return read.image

    def walk(self, request: Request) -> JSONResponse:
        query = request.query_params
        return JSONResponse(placing.frame_list(self.ctx.workspace, query.get("side", "dst"), query.get("mode", "need")))

    def existing(self, request: Request) -> JSONResponse:
        """The faces a frame already has (what Enter would move to the trash)."""
        side, name = request.query_params.get("side", ""), request.query_params.get("frame", "")
        placing.frame_path(self.ctx.workspace, side, name)
        out = []
        for path in placing.faces_of(self.ctx.workspace.aligned(side), name):
            try:
                outline = face_outline(read_meta(path))
            except (FacelabError, OSError):
                continue  # a broken face file is the faceset page's business; Enter moves it away all the same
            out.append({"file": f"data_{side}/aligned/{path.name}", **outline})
        return JSONResponse({"frame": name, "faces": out})

    def landmarks(self, body: dict) -> dict:
        start = time.perf_counter()
        image, meta = placing.cut_faces(self.frame(body.get("side"), body.get("frame")), body["frame"], body)[0]
        return {**face_outline(meta), "preview": preview_url(image),
                "ms": round((time.perf_counter() - start) * 1000, 1)}

    def accept(self, body: dict) -> dict:
        side, name = body.get("side"), body.get("frame")
        frame = self.frame(side, name)
        faces = placing.cut_faces(frame, name, body)
        with self.write_lock:
            done = placing.place_faces(self.ctx.workspace, side, name, frame, faces)
        return {"frame": name, "faces": [self.ctx.relative(p) for p in done["written"]], "moved": done["moved"],
                "trash": self.ctx.relative(done["trash"]) if done["trash"] else None,
                "debug": self.ctx.relative(done["debug"]) if done["debug"] else None,
                "outlines": [face_outline(m) for _, m in faces]}


def routes(ctx: UiContext) -> list[Route]:
    manual = _Manual(ctx)
    return [Route("/api/manual/frames", manual.walk),
            Route("/api/manual/faces", manual.existing),
            Route("/api/manual/landmarks", posted(manual.landmarks), methods=["POST"]),
            Route("/api/manual/accept", posted(manual.accept), methods=["POST"])]


PAGE = PAGES.register("manual")(Page(
    "manual", "Manual extraction",
    "Place faces by hand on the frames where detection failed (or on every frame)", routes))
