"""Merge tuner page: pick a model and a dst frame, change every merge option with a live preview, save the
settings to ``model/merge_settings.json`` (globally or for a frame range), which `facelab merge` reads.

The model's output for a frame does not depend on the merge options, so each frame is predicted once and kept,
with its super-resolved faces once super resolution is on; changing an option only re-runs ``merge_frame`` (the
merge maths) and a JPEG encode. The workspace's XSeg (MODEL_DIR/xseg) is loaded once a ``seg-*`` mask is chosen.

API (under ``/api/merge/``):

- ``GET  state``                 → the options (from MERGE_OPTIONS), models, dst frames with faces, saved settings
- ``GET  saved?frame=N``         → the saved settings and the values `facelab merge` would use for frame N
- ``POST preview``               ``{"model", "frame", "options"}`` → ``image/jpeg`` (not labelled: never written);
  headers ``X-Render-Ms`` (merge + encode), ``X-Predict-Ms`` (0 when the prediction was cached), ``X-Merge-Info``
- ``POST save``                  ``{"options", "first"?, "last"?}`` → the file as written (a range when first/last)
- ``POST remove-range``          ``{"first", "last"}`` → the file as written without that range
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facelab.device import DEVICE_OPTION
from facelab.errors import InputError, ModelError, OptionError, WorkspaceError
from facelab.io.frames import IMAGE_SUFFIXES, list_images
from facelab.merge.merger import PredictedFace, merge_frame, with_super_resolution
from facelab.merge.options import (
    MERGE_OPTIONS,
    SETTINGS_FILE,
    FrameRange,
    load_settings_file,
    resolve,
    save_settings,
)
from facelab.merge.runner import align_faces, group_faces, predict_faces, read_frame
from facelab.options import validate
from facelab.types import FaceMeta
from facelab.web.forms import MAX_DIGITS, object_field, option_json, posted, text_field
from facelab.web.models import ModelCache, model_cache
from facelab.web.pages import PAGES, Page
from facelab.workspace import Workspace

PREVIEW_JPEG_QUALITY = 92
PREDICTIONS_KEPT = 16  # frames whose model output stays cached (a 640×360 frame + faces ≈ 1 MB each)
STATE_KEY = "merge"


# -- pure helpers ----------------------------------------------------------------------------------------------


def saved_json(glob: dict[str, Any], ranges: tuple[FrameRange, ...]) -> dict[str, Any]:
    """The settings file's content (as ``save_settings`` writes it) for showing on the page."""
    return {"global": glob, "ranges": [{"first": r.first, "last": r.last, "options": r.options} for r in ranges]}


def range_options(values: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The options of ``values`` that differ from ``base`` (what a frame range must override)."""
    return {name: value for name, value in values.items() if base.get(name) != value}


def with_range(ranges: tuple[FrameRange, ...], new: FrameRange) -> tuple[FrameRange, ...]:
    """``ranges`` with ``new`` last (it wins over earlier ones), replacing a range with the same first/last."""
    return tuple(r for r in ranges if (r.first, r.last) != (new.first, new.last)) + (new,)


def to_jpeg(image: np.ndarray) -> bytes:
    """JPEG of a merged (H, W, 3) BGR or (H, W, 4) BGRA image (the alpha of export_alpha is dropped)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., :3]),
                            [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    if not ok:
        raise InputError("cannot encode the preview")
    return data.tobytes()


# -- page state: loaded models and predictions -------------------------------------------------------------------


@dataclass
class Prediction:
    """One frame's model output: ``frame`` (H, W, 3) uint8 BGR and one PredictedFace per dst face;
    ``super_resolved``: the same faces carrying their super-resolved prediction, made on the first preview with
    super resolution."""

    frame: np.ndarray
    faces: list[PredictedFace]
    learns_mask: bool
    super_resolved: list[PredictedFace] | None = None


@dataclass
class Tuner:
    """What the page keeps between requests (in ``ctx.state``): each model loaded once (reloaded when its weights
    file changes, e.g. while `facelab train` runs), the last frames' predictions and the dst faces by frame.
    ``lock`` serialises model loading and prediction; merging runs outside it."""

    workspace: Workspace
    device: str = DEVICE_OPTION.default
    lock: threading.Lock = field(default_factory=threading.Lock)
    models: ModelCache | None = None  # the UI's shared one (``tuner``), else its own
    predictions: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    faces: tuple[int, dict[str, list[FaceMeta]]] | None = None
    enhancer: Any = None
    xseg: tuple[int, Any] | None = None  # (weights file stamp, Segmenter or None)

    @property
    def settings_path(self) -> Path:
        return self.workspace.model / SETTINGS_FILE

    def frames(self) -> list[Path]:
        return list_images(self.workspace.frames("dst"))

    def faces_by_frame(self) -> dict[str, list[FaceMeta]]:
        """Dst faces by frame stem, re-read when the aligned folder changes (a face added or trashed)."""
        aligned = self.workspace.aligned("dst")
        if not aligned.is_dir():
            raise WorkspaceError("no dst faces", path=aligned, fix="run the dst face extraction first")
        stamp = aligned.stat().st_mtime_ns
        with self.lock:
            if self.faces is None or self.faces[0] != stamp:
                self.faces = (stamp, group_faces(aligned)[0])
            return self.faces[1]

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = ModelCache(self.workspace.model, self.device)

    def swapper(self, name: str) -> tuple[int, Any]:
        """(weights stamp, loaded model) of ``name``. Torch is imported on first use: the UI starts fast."""
        return self.models.stamped(name)

    def predict(self, model: str, frame_name: str) -> tuple[Prediction, float]:
        """The frame's prediction, cached per (model, weights, frame, faces), and the seconds this call spent
        predicting (0 when it was cached)."""
        # A bare file name in data_dst/ (no listing of a folder that may hold thousands of frames per render).
        path = self.workspace.frames("dst") / frame_name
        if (len(frame_name) > 255 or Path(frame_name).name != frame_name or path.suffix.lower() not in IMAGE_SUFFIXES
                or not path.is_file()):
            raise InputError(f"no dst frame {frame_name[:80]!r}", fix="pick a frame from the list")
        metas = self.faces_by_frame().get(path.stem, [])
        with self.lock:
            stamp, swapper = self.swapper(model)
            # The faces' stamp: a face re-extracted or trashed for this frame means predicting again.
            key = (model, stamp, frame_name, self.faces[0] if self.faces else 0)
            if key in self.predictions:
                self.predictions.move_to_end(key)
                return self.predictions[key], 0.0
            start = time.perf_counter()
            self.predictions[key] = _predict_frame(path, metas, swapper)
            while len(self.predictions) > PREDICTIONS_KEPT:
                self.predictions.popitem(last=False)
            return self.predictions[key], time.perf_counter() - start

    def super_resolved(self, prediction: Prediction) -> list[PredictedFace]:
        """The prediction's faces through super resolution, run once per prediction (the Real-ESRGAN enhancer is
        made on first use; OptionError naming the extra when it is not installed)."""
        from facelab.merge.enhance import FaceEnhancer

        with self.lock:
            if prediction.super_resolved is None:
                if self.enhancer is None:
                    self.enhancer = FaceEnhancer()
                prediction.super_resolved = [with_super_resolution(f, self.enhancer) for f in prediction.faces]
            return prediction.super_resolved

    def segmenter(self, mask: str):
        """The workspace's XSeg when ``mask`` uses it and one is trained (loaded once, again when its weights
        change), else None: ``seg-dst`` then takes the masks applied to the dst faces, ``seg-prd`` says what to
        train."""
        from facelab.train.checkpoint import ModelFiles
        from facelab.xseg.options import MODEL_NAME
        from facelab.xseg.segmenter import load_for_masks, xseg_folder

        if "seg-" not in mask:
            return None
        weights = ModelFiles(xseg_folder(self.workspace.model), MODEL_NAME).weights
        if not weights.is_file():
            return None
        stamp = weights.stat().st_mtime_ns
        with self.lock:
            if self.xseg is None or self.xseg[0] != stamp:
                self.xseg = (stamp, load_for_masks(self.workspace.model, [mask], self.device))
            return self.xseg[1]


def _predict_frame(path: Path, metas: list[FaceMeta], swapper) -> Prediction:
    """Read the frame, align each face as the model wants it and predict them in one batch (as merge_folder)."""
    frame = read_frame(path)
    faces, = predict_faces(swapper, [align_faces(frame, metas, swapper)])
    return Prediction(frame, faces, swapper.learn_mask)


def tuner(ctx) -> Tuner:
    models = model_cache(ctx)  # before taking ctx.lock, which it takes too
    with ctx.lock:
        return ctx.state.setdefault(STATE_KEY, Tuner(ctx.workspace, models=models))


def render_preview(t: Tuner, model: str, frame_name: str, options: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """JPEG of the frame merged with ``options`` (validated like the CLI's) and headers with the timings."""
    values = validate(MERGE_OPTIONS, options)
    prediction, predict_seconds = t.predict(model, frame_name)
    segmenter = t.segmenter(values["mask"])
    start = time.perf_counter()  # the render includes super resolution when it runs (once per prediction)
    faces = t.super_resolved(prediction) if values["super_resolution"] else prediction.faces
    merged = merge_frame(prediction.frame, faces, values, prediction.learns_mask, segmenter=segmenter)
    data = to_jpeg(merged.image)
    render_ms = (time.perf_counter() - start) * 1000
    info = merged.info or ["no face in this frame: it is kept as it is"]
    return data, {"X-Render-Ms": f"{render_ms:.1f}", "X-Predict-Ms": f"{predict_seconds * 1000:.1f}",
                  "X-Merge-Info": json.dumps(info)}  # json.dumps escapes to ASCII: safe in a header


def save_values(path: Path, options: dict[str, Any], first: int | None = None, last: int | None = None) -> str:
    """Save ``options`` to the settings file at ``path``: as the global values, or, with ``first``/``last``, as a
    frame range holding only the options that differ from the global values (so later global changes still
    reach the range). Returns what was saved, in words."""
    values = validate(MERGE_OPTIONS, options)
    glob, ranges = load_settings_file(path)
    if first is None and last is None:
        save_settings(path, values, ranges)
        return "global settings"
    if first is None or last is None or last < first:
        raise OptionError(f"the frame range {first}–{last} is empty", fix="give the first frame, then the last")
    changed = range_options(values, validate(MERGE_OPTIONS, glob))
    if not changed:
        raise OptionError(f"frames {first}–{last}: every option equals the global settings",
                          fix="change an option for these frames first, or save globally")
    save_settings(path, glob, with_range(ranges, FrameRange(first, last, changed)))
    return f"frames {first}–{last}: " + ", ".join(f"{k} = {v}" for k, v in changed.items())


def remove_range(path: Path, first: int, last: int) -> None:
    """Drop the saved range ``first``–``last`` from the settings file (OptionError when there is none)."""
    glob, ranges = load_settings_file(path)
    kept = tuple(r for r in ranges if (r.first, r.last) != (first, last))
    if len(kept) == len(ranges):
        raise OptionError(f"no saved range for frames {first}–{last}")
    save_settings(path, glob, kept)


# -- routes -------------------------------------------------------------------------------------------------------


def _frame_number(value: Any, what: str) -> int | None:
    """A 1-based frame number from the page: a whole number or its digits (None and "" stay None)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_DIGITS:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise OptionError(f"the {what} frame must be a whole number, got {str(value)[:24]!r}")
    if value < 1:
        raise OptionError(f"the {what} frame must be 1 or more, got {value}")
    return value


def routes(ctx) -> list[Route]:
    def settings_json(t: Tuner) -> dict[str, Any]:
        return {"saved": saved_json(*load_settings_file(t.settings_path)), "file": ctx.relative(t.settings_path)}

    def state(_request: Request) -> Response:
        from facelab.train.checkpoint import find_models

        t = tuner(ctx)
        frames = t.frames()
        by_frame = t.faces_by_frame() if t.workspace.aligned("dst").is_dir() else {}
        with_faces = [{"number": n, "name": p.name, "rel": ctx.relative(p), "faces": len(by_frame[p.stem])}
                      for n, p in enumerate(frames, 1) if by_frame.get(p.stem)]
        return JSONResponse({"options": [option_json(o) for o in MERGE_OPTIONS],
                             "models": find_models(t.workspace.model), "frames": with_faces, **settings_json(t)})

    def saved(request: Request) -> Response:
        t = tuner(ctx)
        number = _frame_number(request.query_params.get("frame"), "chosen") or 1
        return JSONResponse({**settings_json(t), "values": resolve({}, t.settings_path).for_frame(number)})

    def preview(body: dict) -> Response:
        model = text_field(body, "model")
        if not model:
            raise ModelError("no model chosen", fix="train one with `facelab train`, then pick it")
        data, headers = render_preview(tuner(ctx), model, text_field(body, "frame"), object_field(body, "options"))
        return Response(data, media_type="image/jpeg", headers={**headers, "Cache-Control": "no-store"})

    def save(body: dict) -> dict:
        t = tuner(ctx)
        what = save_values(t.settings_path, object_field(body, "options"), _frame_number(body.get("first"), "first"),
                           _frame_number(body.get("last"), "last"))
        return {**settings_json(t), "message": f"Saved {what} to {ctx.relative(t.settings_path)}."}

    def remove(body: dict) -> dict:
        t = tuner(ctx)
        first, last = _frame_number(body.get("first"), "first"), _frame_number(body.get("last"), "last")
        remove_range(t.settings_path, first, last)
        return {**settings_json(t), "message": f"Removed the range {first}–{last}."}

    return [Route("/api/merge/state", state), Route("/api/merge/saved", saved),
            Route("/api/merge/preview", posted(preview), methods=["POST"]),
            Route("/api/merge/save", posted(save), methods=["POST"]),
            Route("/api/merge/remove-range", posted(remove), methods=["POST"])]


PAGE = PAGES.register("merge")(Page("merge", "Merge tuner", "Tune merge options on one frame with a live preview",
                                    routes))
