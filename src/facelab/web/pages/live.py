"""Live page: the browser's camera swapped in real time. The page sends camera frames over a WebSocket, the server
swaps each one (``facelab.live.session.LiveSwap``: detect/track → align → predict → blend → watermark) in worker
threads, off the event loop, and sends it back; the page shows it beside the camera, labelled "synthetic", with the
frames/s and latency it measures.

API (under ``/api/live/``):

- ``GET  state``   → the options the page may change live (merge options, starting at the values the merge tuner
  saved, and the face tracking's), the models (trained ones in the model folder and ``.onnx``/``.dfm`` files
  exported there), the frame limits. The ``seg-*`` masks use the workspace's XSeg (MODEL_DIR/xseg) when trained.
- ``WS   socket``  one swap session per socket (its own tracking and smoothing), closed with the socket:

  - page → server, text: ``{"model"?: NAME, "options"?: {...}, "reset"?: true}`` → ``{"type": "ready", "model",
    "options"}`` (every value now in use); a model is chosen before the first frame
  - page → server, binary: one camera frame, JPEG or PNG (≤ MAX_FRAME_BYTES, ≤ MAX_FRAME_PIXELS) → binary: a
    4-byte big-endian length, a JSON header ``{"faces", "ms": {stage: milliseconds, …, "total", "decode",
    "encode"}}``, then the swapped frame as JPEG (watermarked and labelled as synthetic)
  - anything refused → ``{"type": "error", "text": one line, "frame": true when it answers a frame}``; the socket
    stays open. Every frame gets exactly one answer, so the page can keep a fixed number in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from facelab.errors import FacelabError, InputError, ModelError
from facelab.io.faceimage import image_header_size
from facelab.live.options import LIVE_OPTIONS
from facelab.merge.options import MERGE_OPTIONS, SETTINGS_FILE, resolve
from facelab.options import validate
from facelab.provenance import label_jpeg
from facelab.web.forms import option_json, parse_json_object
from facelab.web.pages import PAGES, Page
from facelab.web.models import model_cache
from facelab.web.pages.merge import tuner

log = logging.getLogger(__name__)

# Super resolution (~0.3 s a face) and PNG export make no sense live; the stream runner's own options
# (realtime, queue) are the page's flow control here.
MERGE_NAMES = ("mode", "mask", "erode", "blur", "face_scale", "colour_transfer", "masked_hist_match",
               "hist_match_threshold", "degrade_colour")
TRACKING_NAMES = ("smoothing", "detect_every", "max_faces", "min_face_size")
MERGE_FIELDS = tuple(o for o in MERGE_OPTIONS if o.name in MERGE_NAMES)
TRACKING_FIELDS = tuple(o for o in LIVE_OPTIONS if o.name in TRACKING_NAMES)
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a 1920×1080 JPEG at quality 95 is ~1 MB; the page sends 640×360 at ~40 kB
MAX_FRAME_PIXELS = 1920 * 1080
MAX_MESSAGE_CHARS = 64 * 1024  # a text message holds a model name and the options (~400 bytes)
OUTPUT_JPEG_QUALITY = 85
ANSWERS_AHEAD = 2  # answers waiting to be sent per socket (the page keeps as many frames in flight)


# -- pure helpers ----------------------------------------------------------------------------------------------


def decode_frame(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 BGR of a camera frame sent by the page; InputError when it is larger than MAX_FRAME_BYTES
    or MAX_FRAME_PIXELS (read from its header, before anything is allocated) or not a decodable JPEG/PNG."""
    too_big = InputError(f"a frame must be at most {MAX_FRAME_BYTES // 1024 // 1024} MB and {MAX_FRAME_PIXELS} "
                         "pixels", fix="send camera frames of at most 1920×1080 pixels")
    if len(data) > MAX_FRAME_BYTES:
        raise too_big
    size = image_header_size(data)
    if size is None:
        raise InputError("a frame must be a JPEG or PNG image", fix="send the camera's frames as JPEG")
    if size[0] * size[1] > MAX_FRAME_PIXELS:
        raise too_big
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if min(size) > 0 else None
    except cv2.error:
        image = None
    # The decoded size is checked too: a file may hold a second frame header, larger than the one read above.
    if image is None or image.ndim != 3 or image.shape[0] * image.shape[1] > MAX_FRAME_PIXELS:
        raise InputError("the frame is not a decodable image", fix="send the camera's frames as JPEG")
    return image


def encode_answer(image: np.ndarray, faces: int, ms: dict[str, float]) -> bytes:
    """The binary answer to one frame: 4-byte big-endian header length, the JSON header ``{"faces", "ms"}``, then
    ``image`` (H, W, 3) uint8 BGR as JPEG carrying the synthetic-media label."""
    start = time.perf_counter()
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, OUTPUT_JPEG_QUALITY])
    if not ok:
        raise InputError("cannot encode the swapped frame")
    jpeg = label_jpeg(data.tobytes(), source="facelab live")
    timings = {**ms, "encode": (time.perf_counter() - start) * 1000}
    header = json.dumps({"faces": int(faces), "ms": {k: round(float(v), 2) for k, v in timings.items()}}).encode()
    return struct.pack(">I", len(header)) + header + jpeg


def start_values(settings_path: Path) -> dict[str, Any]:
    """The options the page starts with: the merge options the merge tuner saved for every frame, else their
    defaults, and the tracking defaults (an unreadable settings file is the merge tuner's to report)."""
    try:
        saved = resolve({}, settings_path).base
    except FacelabError:
        saved = {}
    return {o.name: saved.get(o.name, o.default) for o in MERGE_FIELDS + TRACKING_FIELDS}


def split_changes(changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(merge option changes, tracking option changes) of a message's ``options``; the tracking values parsed
    (OptionError when out of range), InputError for anything the page cannot change live."""
    if not isinstance(changes, dict):
        raise InputError("'options' must be a JSON object", fix="reload the page")
    refused = sorted(set(changes) - set(MERGE_NAMES) - set(TRACKING_NAMES))
    if refused:
        raise InputError(f"{', '.join(map(repr, refused[:5]))[:200]} cannot be changed live",
                         fix=f"change only {', '.join(MERGE_NAMES + TRACKING_NAMES)}")
    merge = {k: v for k, v in changes.items() if k in MERGE_NAMES}
    tracking = validate([o for o in TRACKING_FIELDS if o.name in changes], changes)
    return merge, tracking


# -- the models a socket may choose ------------------------------------------------------------------------------


# -- one socket's session --------------------------------------------------------------------------------------


@dataclass
class Connection:
    """One socket's swap session: the model it chose and its LiveSwap (tracking and smoothing follow one camera).
    ``load(name)`` gives a loaded swapper, ``segmenter(mask)`` the workspace's XSeg when ``mask`` uses one (else
    None). Its methods run in a worker thread, one call at a time."""

    load: Callable[[str], Any]
    segmenter: Callable[[str], Any]
    options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    session: Any = None

    def command(self, text: str) -> dict[str, Any]:
        """Apply a text message (model, options, reset: see the module docstring); say what is now in use."""
        if len(text) > MAX_MESSAGE_CHARS:
            raise InputError(f"a message is larger than {MAX_MESSAGE_CHARS // 1024} kB", fix="reload the page")
        body = parse_json_object(text.encode())
        unknown = sorted(set(body) - {"model", "options", "reset"})
        if unknown:
            raise InputError(f"unknown fields {', '.join(map(repr, unknown[:5]))[:200]} in a message",
                             fix="reload the page")
        merge, tracking = split_changes(body.get("options") or {})
        if body.get("model") is not None or tracking or "seg-" in str(merge.get("mask", "")):
            # A new model, tracking or XSeg mask: a new session (the old one stays if this one is refused).
            name = body["model"] if body.get("model") is not None else self.model
            self._start(name, {**self.options, **merge, **tracking})
        elif merge:
            self._require_model()
            self.options = {**self.options, **self._merge_values(self.session.set_options(merge))}
        if body.get("reset") is True and self.session is not None:
            self.session.reset()
        return {"type": "ready", "model": self.model, "options": self.options}

    def _start(self, name: Any, options: dict[str, Any]) -> None:
        from facelab.live.session import LiveSwap

        if name is None:
            raise ModelError("no model chosen yet", fix="pick a model first")
        merge = {k: v for k, v in options.items() if k in MERGE_NAMES}
        tracking = {k: v for k, v in options.items() if k in TRACKING_NAMES}
        session = LiveSwap(self.load(name), merge, segmenter=self.segmenter(str(merge.get("mask", ""))), **tracking)
        self.model, self.session = name, session
        self.options = {**self._merge_values(session.options), **validate(TRACKING_FIELDS, tracking)}

    @staticmethod
    def _merge_values(values: dict[str, Any]) -> dict[str, Any]:
        return {k: values[k] for k in MERGE_NAMES}

    def _require_model(self) -> None:
        if self.session is None:
            raise ModelError("no model chosen yet", fix="pick a model first")

    def prepare(self, data: bytes) -> tuple[Any, Any, float]:
        """The first half of a frame's answer: (the session, its prepared frame, ms spent decoding). The
        session goes with it: a model chosen meanwhile must not blend this frame."""
        self._require_model()
        start = time.perf_counter()
        image = decode_frame(data)
        decoded_ms = (time.perf_counter() - start) * 1000
        return self.session, self.session.prepare(image), decoded_ms

    @staticmethod
    def blend(prepared: tuple[Any, Any, float]) -> bytes:
        """The binary answer (``encode_answer``) to a frame from ``prepare``."""
        session, frame, decoded_ms = prepared
        swapped = session.blend(frame)
        return encode_answer(swapped.frame, swapped.faces, {**swapped.ms, "decode": decoded_ms})

    def close(self) -> None:
        self.session = None


async def answer(call: Callable, argument: Any, frame: bool) -> Any:
    """``call(argument)`` in a worker thread (the event loop stays free for the other pages and sockets); a
    refusal or a bug becomes the error message the page shows, never the end of the stream."""
    try:
        return await run_in_threadpool(call, argument)
    except FacelabError as exc:
        text = str(exc)
    except Exception as exc:
        log.exception("live message failed")
        text = f"{type(exc).__name__}: {exc}"
    return {"type": "error", "text": text, "frame": frame}


async def send_answers(ws: WebSocket, answers: asyncio.Queue) -> None:
    """Send the socket's answers in the order of its messages (a frame's blend may still be running). Once the
    page is gone they are dropped: the reading loop ends at the disconnect it then receives."""
    gone = False
    while True:
        item = await answers.get()
        message = await item if asyncio.isfuture(item) else item
        if gone:
            continue
        try:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_json(message)
        except WebSocketDisconnect:
            gone = True


async def serve(ws: WebSocket, connection: Connection) -> None:
    """Answer the socket's messages in order until it closes. A frame's first half (tracking, the model) runs
    in order, one frame at a time; its blend runs beside the next frame's first half, as `facelab live` does."""
    await ws.accept()
    answers: asyncio.Queue = asyncio.Queue(maxsize=ANSWERS_AHEAD)
    sender = asyncio.create_task(send_answers(ws, answers))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                prepared = await answer(connection.prepare, message["bytes"], frame=True)
                await answers.put(prepared if isinstance(prepared, dict) else
                                  asyncio.ensure_future(answer(connection.blend, prepared, frame=True)))
            else:
                await answers.put(await answer(connection.command, message.get("text") or "", frame=False))
    except WebSocketDisconnect:
        return
    finally:
        sender.cancel()
        connection.close()


# -- routes -------------------------------------------------------------------------------------------------------


def routes(ctx) -> list[BaseRoute]:
    models = model_cache(ctx)

    def state(_request: Request) -> Response:
        values = start_values(ctx.workspace.model / SETTINGS_FILE)
        fields = [{**option_json(o), "value": values[o.name], "group": group}
                  for group, options in (("merge", MERGE_FIELDS), ("tracking", TRACKING_FIELDS)) for o in options]
        return JSONResponse({"options": fields, "models": models.names(),
                             "limits": {"bytes": MAX_FRAME_BYTES, "pixels": MAX_FRAME_PIXELS}})

    async def socket(ws: WebSocket) -> None:
        # The XSeg comes from the merge tuner's cache: the two pages share it (and its reload on new weights).
        connection = Connection(models.get, lambda mask: tuner(ctx).segmenter(mask),
                                options=start_values(ctx.workspace.model / SETTINGS_FILE))
        await serve(ws, connection)

    return [Route("/api/live/state", state), WebSocketRoute("/api/live/socket", socket)]


PAGE = PAGES.register("live")(Page("live", "Live", "Swap the browser's camera live, labelled as synthetic", routes))
