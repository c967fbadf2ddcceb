"""One live stream's swap, frame by frame: detect/track → smooth → align → swap → blend → watermark.

``LiveSwap.process`` is the whole step for one frame (the web UI's WebSocket handler calls it). The stream
runner (``facelab.live.stream``) calls its two halves, ``prepare`` (tracking and the model) and ``blend``, on two
threads, so one frame is blended while the next is predicted. ``prepare`` keeps the tracking state and must be
called in frame order from one thread at a time; ``blend`` is pure and may run beside it.

The blending is ``facelab.merge.merger.merge_frame`` with the merge options, as ``facelab merge`` does it: the
pixels outside each swapped face are returned unchanged, the swapped pixels carry the invisible watermark
(``facelab.provenance``). A frame in which no face is swapped is returned as it came: it is not synthetic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from facelab import __version__
from facelab.errors import InputError, OptionError
from facelab.geometry.alignment import face_from_landmarks, transform_points
from facelab.geometry.boxes import box_from_points
from facelab.live.options import LIVE_OPTIONS
from facelab.live.smoothing import one_euro
from facelab.live.tracking import FaceTracker
from facelab.merge.masks import learned_masks_needed, resolve_mask_name
from facelab.merge.merger import PredictedFace, merge_frame
from facelab.merge.options import MERGE_OPTIONS, OPTION_NAMES
from facelab.merge.runner import FaceSwapper, align_faces, predict_faces
from facelab.options import validate
from facelab.types import FaceMeta

STAGES = ("detect", "align", "swap", "blend", "total")
_LIVE = {o.name: o for o in LIVE_OPTIONS}


@dataclass
class LiveFrame:
    """``frame`` (H, W, 3) uint8 BGR: swapped, blended, the watermark in the swapped pixels; ``faces``: faces
    swapped in it; ``ms``: milliseconds per stage (detect, align, swap, blend, total)."""

    frame: np.ndarray
    faces: int
    ms: dict[str, float]


@dataclass
class PreparedFrame:
    """A frame after ``LiveSwap.prepare``: the model's answer for its faces, the options to blend them with
    (those current when it was prepared) and the stage times so far (ms)."""

    frame: np.ndarray
    faces: list[PredictedFace]
    options: dict[str, Any]
    ms: dict[str, float] = field(default_factory=dict)
    started: float = 0.0


def live_face_meta(landmarks: np.ndarray, index: int, face_type: str, size: int,
                   frame_shape: tuple[int, ...]) -> FaceMeta:
    """The metadata merging needs for a face found live: ``landmarks`` (68, 2) frame pixels, aligned as
    ``face_type`` in a square of ``size`` px."""
    face_from_frame = face_from_landmarks(landmarks, face_type, size)
    return FaceMeta(face_type=face_type, image_size=size, landmarks=transform_points(landmarks, face_from_frame),
                    source_filename="", source_size=(frame_shape[1], frame_shape[0]),
                    source_rect=box_from_points(landmarks), source_landmarks=landmarks,
                    face_from_image=face_from_frame, detector="live", face_index=index, tool_version=__version__)


def check_live_options(values: Mapping[str, Any], learns_mask: bool, has_segmenter: bool) -> None:
    """OptionError for merge options a live stream cannot honour (before a frame fails on them)."""
    if values["super_resolution"]:
        raise OptionError("super resolution takes about 0.3 s a face, far too slow for a live stream",
                          fix="turn it off, or use `facelab merge` for a recorded video")
    if values["export_alpha"]:
        raise OptionError("a live stream has no alpha channel to export", fix="turn export alpha off")
    parts = resolve_mask_name(values["mask"], learns_mask).split("*")
    if not learns_mask and any(p.startswith("learned") for p in parts):
        raise OptionError(f"mask {values['mask']!r} needs a model that learns a mask, and this one does not",
                          fix="use mask dst, or train a model with learn mask on")
    if not has_segmenter and any(p.startswith("seg-") for p in parts):
        raise OptionError(f"mask {values['mask']!r} needs a trained XSeg segmenter",
                          fix="use mask dst or learned, or train one with `facelab xseg train`")


def model_threads() -> int:
    """CPU threads for the model in a live stream: every core but one, which blends the previous frame meanwhile.
    Measured on 2 shared cores (demo SAE in ONNX Runtime): 174 ms of CPU per frame with one model thread against
    250 with two, whose waiting for each other only burns time the blending needs."""
    from facelab.export.runtime import cpu_threads

    return max(1, cpu_threads() - 1)


def load_live_swapper(path: Path, model_name: str | None = None, device: str = "auto") -> FaceSwapper:
    """``facelab.export.runtime.load_swapper`` for a live stream: the model on ``model_threads()`` CPU threads
    (a PyTorch model on the CPU sets torch's thread count, which is per process: for a process that streams)."""
    from facelab.export.runtime import is_exported_file, load_swapper

    threads = model_threads()
    swapper = load_swapper(path, model_name, device, threads=threads)
    if not is_exported_file(path) and str(getattr(swapper, "device", "cpu")) == "cpu":
        import torch

        torch.set_num_threads(threads)
    return swapper


class LiveSwap:
    """Swap the faces of a stream of frames with ``swapper`` (``facelab.merge.runner.FaceSwapper``).

    ``options``: merge options (``MERGE_OPTIONS`` names; the rest at their defaults). ``smoothing`` in [0, 1]
    steadies the face between frames (``facelab.live.smoothing``); ``detect_every``, ``landmarks``,
    ``max_faces``, ``min_face_size`` as ``LIVE_OPTIONS``. ``device``: where the detector runs [default: the
    swapper's device]. ``segmenter``: a loaded XSeg for the ``seg-*`` masks, or None.
    """

    def __init__(self, swapper: FaceSwapper, options: dict | None = None, *, smoothing: float = 0.5,
                 detect_every: int = 8, landmarks: str = "one-pass", max_faces: int = 1, min_face_size: int = 40,
                 detector: str = "retinaface", device: str | None = None, segmenter: Any = None):
        self.swapper = swapper
        self.segmenter = segmenter
        self.smoothing = _LIVE["smoothing"].parse(smoothing)
        self._options = validate(MERGE_OPTIONS, {})
        self.set_options(options or {})
        device = str(device or getattr(swapper, "device", "cpu"))
        self.tracker = FaceTracker(detector, device, detect_every=_LIVE["detect_every"].parse(detect_every),
                                   two_pass=_LIVE["landmarks"].parse(landmarks) == "two-pass",
                                   max_faces=_LIVE["max_faces"].parse(max_faces),
                                   min_face_size=_LIVE["min_face_size"].parse(min_face_size))

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def set_options(self, changes: dict) -> dict:
        """Change some merge options (a value None puts that option back to its default); every value is checked
        by its option before any is taken. Returns all current options. Frames already prepared keep theirs."""
        if not isinstance(changes, Mapping):
            raise OptionError("merge options must be given as names and values", fix="send an object")
        unknown = sorted(set(changes) - set(OPTION_NAMES))
        if unknown:
            raise OptionError(f"unknown merge options {unknown}", fix=f"use {', '.join(OPTION_NAMES)}")
        values = validate(MERGE_OPTIONS, {**self._options, **changes})
        check_live_options(values, self.swapper.learn_mask, self.segmenter is not None)
        self._options = values  # one assignment: a frame being prepared sees the old or the new set, never a mix
        return dict(values)

    def reset(self) -> None:
        """Forget the tracked faces and their smoothing (a new stream starts)."""
        self.tracker.reset()

    def warm_up(self) -> None:
        """Run the detector, the landmarks and the model once on a blank frame, so the first frames of a stream are
        not slowed by kernels and thread pools being set up. Tracking state is untouched."""
        blank = np.zeros((360, 640, 3), np.uint8)
        self.tracker.detector.detect(blank)
        self.tracker.predictor.predict(blank[..., 0], (200.0, 100.0, 300.0, 200.0))
        r = self.swapper.resolution
        self.swapper.predict(np.zeros((1, r, r, 3), np.uint8))

    def process(self, frame: np.ndarray) -> LiveFrame:
        """The swapped (H, W, 3) uint8 BGR frame for ``frame`` (H, W, 3) uint8 BGR."""
        return self.blend(self.prepare(frame))

    def prepare(self, frame: np.ndarray) -> PreparedFrame:
        """Find, steady and align the faces of ``frame`` and run the model on them (the first half of
        ``process``)."""
        started = time.perf_counter()
        frame = _checked(frame)
        options = self._options
        tracks, times = self.tracker.update(frame)
        start = time.perf_counter()
        metas = []
        for track in tracks:
            steady, track.smoothed = one_euro(track.landmarks, track.smoothed, self.smoothing)
            metas.append(live_face_meta(steady, track.index, self.swapper.face_type, self.swapper.resolution,
                                        frame.shape))
        aligned = align_faces(frame, metas, self.swapper)
        aligned_at = time.perf_counter()
        masks = learned_masks_needed([options["mask"]], self.swapper.learn_mask)
        predicted = predict_faces(self.swapper, [aligned], masks)[0] if aligned else []
        ms = {"detect": 1000 * times.detect, "align": 1000 * (times.align + aligned_at - start),
              "swap": 1000 * (time.perf_counter() - aligned_at)}
        return PreparedFrame(frame, predicted, options, ms, started)

    def blend(self, prepared: PreparedFrame) -> LiveFrame:
        """Blend the prepared faces into their frame and watermark them (the second half of ``process``)."""
        start = time.perf_counter()
        merged = merge_frame(prepared.frame, prepared.faces, prepared.options, self.swapper.learn_mask,
                             segmenter=self.segmenter)
        end = time.perf_counter()
        ms = {**prepared.ms, "blend": 1000 * (end - start), "total": 1000 * (end - prepared.started)}
        return LiveFrame(merged.image, len(prepared.faces), ms)


def _checked(frame: Any) -> np.ndarray:
    """``frame`` as a contiguous (H, W, 3) uint8 array; InputError for anything else."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise InputError(f"a live frame must be (H, W, 3) uint8 BGR, got {shape} {getattr(frame, 'dtype', '')}",
                         fix="send BGR frames of 8 bits per channel")
    if min(frame.shape[:2]) < 16 or frame.shape[0] * frame.shape[1] > 8192 * 8192:
        raise InputError(f"a live frame of {frame.shape[1]}×{frame.shape[0]} px is too small or too big",
                         fix="send frames between 16×16 and 8192×8192 px")
    return np.ascontiguousarray(frame)
