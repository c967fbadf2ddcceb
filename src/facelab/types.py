"""Core types shared by every stage. Coordinates are (x, y) in pixels, origin at the top-left pixel's corner."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from facelab.errors import MetadataError
from facelab.names import is_plain_name


class FaceType(str, Enum):
    """How much of the head an aligned face shows, from tightest to widest."""

    HALF = "half"
    MID_FULL = "mid-full"
    FULL = "full"
    WHOLE_FACE = "whole-face"
    HEAD = "head"


# The seed's short answers for a face type (``h/mf/f/wf``; head is spelled out): ``Option(aliases=...)``.
FACE_TYPE_LETTERS = (("h", FaceType.HALF.value), ("mf", FaceType.MID_FULL.value), ("f", FaceType.FULL.value),
                     ("wf", FaceType.WHOLE_FACE.value))


# Bounds of the metadata schema: generous for real faces and frames, small enough that no stored value can make
# a later step allocate a huge image, loop forever or lose precision.
MAX_FACE_SIZE = 8192  # aligned face side, px
MAX_FRAME_SIDE = 65536  # source frame side, px
MAX_COORDINATE = 1e6  # |x|, |y| of any stored point or rectangle corner, px
MAX_MASK_POINTS = 100_000  # all mask polygons of one face together
MASK_KINDS = ("include", "exclude")

# Arrays in FaceMeta and their shapes; everything else is a plain JSON value.
_ARRAY_FIELDS = {"landmarks": (68, 2), "source_landmarks": (68, 2), "face_from_image": (2, 3)}


@dataclass
class FaceMeta:
    """Everything known about one aligned face; stored as JSON inside the face's own image file.

    - ``landmarks``: (68, 2) float, iBUG-68 points in aligned-face pixels.
    - ``source_landmarks``: (68, 2) float, the same points in source-frame pixels.
    - ``face_from_image``: (2, 3) float, maps source-frame (x, y, 1) to aligned-face (x, y); invertible.
    - ``source_rect``: detector box (x0, y0, x1, y1) in source-frame pixels.
    - ``source_size``: (width, height) of the source frame; (0, 0) when unknown (imported faces).
    - ``source_filename``: the source frame's bare file name ("" when unknown).
    - ``pitch``, ``yaw``, ``roll``: head pose in degrees (yaw > 0: face turned to its left, i.e. image right).
    - ``mask_polygons``: the user's mask-editor polygons in aligned pixels:
      ``{"include": [[[x, y], ...], ...], "exclude": [...]}``.
    - ``extra``: anything else (e.g. fields kept from an imported DeepFaceLab face).

    Every field is checked when a FaceMeta is made (and so when one is read from a file): a wrong type, a
    non-finite number, a wrong length or a degenerate matrix raises MetadataError naming the field. Code that
    holds a FaceMeta can rely on it.
    """

    face_type: str
    image_size: int
    landmarks: np.ndarray
    source_filename: str
    source_size: tuple[int, int]
    source_rect: tuple[float, float, float, float]
    source_landmarks: np.ndarray
    face_from_image: np.ndarray
    detector: str = ""
    score: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0
    face_index: int = 0
    tool_version: str = ""
    mask_polygons: dict[str, list] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check and normalise every field in place (arrays to float64, tuples of int/float); MetadataError
        naming the first wrong field. Run on construction; run it again after changing fields by hand."""
        if isinstance(self.face_type, FaceType):
            self.face_type = self.face_type.value
        names = tuple(t.value for t in FaceType)
        if not isinstance(self.face_type, str) or self.face_type not in names:
            _bad("face_type", f"must be one of {', '.join(names)}", self.face_type)
        self.image_size = _whole("image_size", self.image_size, 1, MAX_FACE_SIZE)
        for name, shape in _ARRAY_FIELDS.items():
            setattr(self, name, _array(name, getattr(self, name), shape))
        _check_matrix(self.face_from_image)
        if self.source_filename != "" and not is_plain_name(self.source_filename):
            _bad("source_filename", "must be a bare file name (no folders)", self.source_filename)
        self.source_size = _size(self.source_size)
        self.source_rect = tuple(_array("source_rect", self.source_rect, (4,)).tolist())
        for name in ("score", "pitch", "yaw", "roll"):
            setattr(self, name, _finite(name, getattr(self, name)))
        self.face_index = _whole("face_index", self.face_index, 0, 1_000_000)
        for name in ("detector", "tool_version"):
            if not isinstance(getattr(self, name), str):
                _bad(name, "must be text", getattr(self, name))
        self.mask_polygons = _polygons(self.mask_polygons)
        if not isinstance(self.extra, dict):
            _bad("extra", "must be an object", self.extra)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.astype(float).tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Any) -> "FaceMeta":
        """Build from parsed JSON; MetadataError naming the missing or wrong field. Unknown keys are ignored."""
        if not isinstance(data, dict):
            raise MetadataError("corrupt facelab metadata: not a JSON object", fix="re-extract this face")
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name, f in known.items():
            if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MetadataError(f"corrupt facelab metadata: {name} is missing", fix="re-extract this face")
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def image_from_face(self) -> np.ndarray:
        """(2, 3) inverse of ``face_from_image``: aligned-face (x, y, 1) to source-frame (x, y)."""
        full = np.vstack([self.face_from_image, [0.0, 0.0, 1.0]])
        return np.linalg.inv(full)[:2]


# -- the metadata schema -----------------------------------------------------------------------------------


def _bad(name: str, problem: str, value: Any) -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise MetadataError(f"corrupt facelab metadata: {name} {problem}, got {shown}", fix="re-extract this face")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if not (_is_number(value) and low <= value <= high and float(value).is_integer()):
        _bad(name, f"must be a whole number from {low} to {high}", value)
    return int(value)


def _finite(name: str, value: Any) -> float:
    if not (_is_number(value) and abs(value) <= MAX_COORDINATE and math.isfinite(value)):
        _bad(name, f"must be a finite number within ±{MAX_COORDINATE:g}", value)
    return float(value)


def _array(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` with finite entries no larger than MAX_COORDINATE."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        arr = None
    if arr is None or arr.shape != shape or arr.dtype.kind not in "iuf":
        _bad(name, f"must be {' × '.join(map(str, shape))} numbers", value)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0.0) > MAX_COORDINATE:
        _bad(name, f"must hold finite numbers within ±{MAX_COORDINATE:g}", value)
    return arr


def _check_matrix(face_from_image: np.ndarray) -> None:
    """The (2, 3) map must be invertible with a sane scale: its singular values within 1e-4 .. 1e4 (a face is
    cut from a frame at most 10,000 × smaller or larger), so pasting the face back never divides by ~0."""
    singular = np.linalg.svd(face_from_image[:, :2], compute_uv=False)
    if not (singular.min() >= 1e-4 and singular.max() <= 1e4):
        _bad("face_from_image", "must be an invertible face-from-frame map", face_from_image.tolist())


def _size(value: Any) -> tuple[int, int]:
    """(width, height) of the source frame, each 1..MAX_FRAME_SIDE, or (0, 0) for unknown."""
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2:
        _bad("source_size", "must be [width, height]", value)
    if all(_is_number(v) and v == 0 for v in value):
        return (0, 0)
    width = _whole("source_size", value[0], 1, MAX_FRAME_SIDE)
    return width, _whole("source_size", value[1], 1, MAX_FRAME_SIDE)


def _polygons(value: Any) -> dict[str, list]:
    """``{"include"|"exclude": [polygon, ...]}``, each polygon ≥ 3 finite [x, y] points; lists of floats."""
    if not isinstance(value, dict) or set(value) - set(MASK_KINDS):
        _bad("mask_polygons", f"must be an object with {' and/or '.join(MASK_KINDS)} lists", value)
    out, total = {}, 0
    for kind, polys in value.items():
        if not isinstance(polys, list):
            _bad(f"mask_polygons.{kind}", "must be a list of polygons", polys)
        out[kind] = []
        for poly in polys:
            if not isinstance(poly, (list, np.ndarray)) or len(poly) < 3:
                _bad(f"mask_polygons.{kind}", "polygons need at least 3 [x, y] points", poly)
            out[kind].append(_array(f"mask_polygons.{kind}", poly, (len(poly), 2)).tolist())
            total += len(poly)
    if total > MAX_MASK_POINTS:
        _bad("mask_polygons", f"must have at most {MAX_MASK_POINTS} points in all", total)
    return out
