"""The extract step's options, declared once (CLI flags, prompts, web forms and validation come from here)."""

from __future__ import annotations

from dataclasses import asdict, field, make_dataclass
from typing import Any, Mapping

from facelab.device import DEVICE_OPTION
from facelab.extract.detectors import DETECTORS
from facelab.options import Option, validate
from facelab.types import FACE_TYPE_LETTERS, FaceType

EXTRACT_OPTIONS = [
    Option("detector", "retinaface", "Face detector: retinaface (fast, default), mtcnn, hog (dlib, frontal "
           "faces only) or manual (rectangles from --rectangles).", choices=tuple(DETECTORS.names())),
    Option("face_type", FaceType.FULL.value, "How much of the head the aligned face shows, tightest first.",
           choices=tuple(t.value for t in FaceType), aliases=FACE_TYPE_LETTERS),
    Option("image_size", 256, "Side of the aligned face image in pixels.", min=64, max=2048),
    Option("image_format", "jpg", "File type of the aligned faces (png is lossless and larger).",
           choices=("jpg", "png")),
    Option("jpeg_quality", 95, "JPEG quality of the aligned faces.", min=1, max=100),
    Option("max_faces", 0, "Keep at most this many faces per frame, largest first (0: all).", min=0),
    Option("min_face_size", 0, "Ignore faces whose detected box is smaller than this many pixels.", min=0),
    Option("rotate_retry", False, "When a frame has no face, try it turned by 90°, 180° and 270°."),
    DEVICE_OPTION,
    Option("debug", None, "Write aligned_debug/ images: each frame with boxes, landmarks and the face square "
           "(not set: yes for dst, no for src).", type=bool, prompt="Write aligned_debug images"),
]

_BY_NAME = {o.name: o for o in EXTRACT_OPTIONS}


def _of(cls, values: Mapping[str, Any] | None = None, **more: Any) -> "ExtractSettings":
    """The settings ``values`` (and ``more``) name, each checked by its option; the rest at their defaults.
    TypeError for a name that is not an extract option (a caller's mistake, not a user's)."""
    given = {**(values or {}), **more}
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise TypeError(f"not extract options: {', '.join(unknown)}")
    return cls(**validate(EXTRACT_OPTIONS, given))


def _extractor_args(self) -> dict[str, Any]:
    """What picks and cuts the faces (``Extractor``'s keywords): everything but file format, device and debug."""
    return {k: v for k, v in asdict(self).items() if k not in _NOT_EXTRACTOR}


_NOT_EXTRACTOR = ("image_format", "jpeg_quality", "device", "debug")

# One field per option, named, typed and defaulted by it: the options stay the single declaration.
ExtractSettings = make_dataclass(
    "ExtractSettings", [(o.name, Any, field(default=o.default)) for o in EXTRACT_OPTIONS], frozen=True,
    namespace={"__doc__": "The extract step's settings: one frozen field per EXTRACT_OPTIONS option.",
               "of": classmethod(_of), "extractor_args": _extractor_args, "__module__": __name__})
