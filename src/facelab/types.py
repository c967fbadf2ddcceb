"""Core types shared by every stage. Coordinates are (x, y) in pixels, origin at the top-left pixel's corner."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class FaceType(str, Enum):
    """How much of the head an aligned face shows, from tightest to widest."""

    HALF = "half"
    MID_FULL = "mid-full"
    FULL = "full"
    WHOLE_FACE = "whole-face"
    HEAD = "head"


@dataclass(frozen=True)
class BBox:
    """An axis-aligned box in frame pixels: left, top, right, bottom (right/bottom exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


# Arrays in FaceMeta and their shapes; everything else is a plain JSON value.
_ARRAY_FIELDS = {"landmarks": (68, 2), "source_landmarks": (68, 2), "face_from_image": (2, 3)}


@dataclass
class FaceMeta:
    """Everything known about one aligned face; stored as JSON inside the face's own image file.

    - ``landmarks``: (68, 2) float, iBUG-68 points in aligned-face pixels.
    - ``source_landmarks``: (68, 2) float, the same points in source-frame pixels.
    - ``face_from_image``: (2, 3) float, maps source-frame (x, y, 1) to aligned-face (x, y).
    - ``source_rect``: detector box (x0, y0, x1, y1) in source-frame pixels.
    - ``source_size``: (width, height) of the source frame.
    - ``pitch``, ``yaw``, ``roll``: head pose in degrees (yaw > 0: face turned to its left, i.e. image right).
    - ``mask_polygons``: the user's mask-editor polygons in aligned pixels:
      ``{"include": [[[x, y], ...], ...], "exclude": [...]}``.
    - ``extra``: anything else (e.g. fields kept from an imported DeepFaceLab face).
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
    def from_json(cls, data: dict[str, Any]) -> "FaceMeta":
        """Build from parsed JSON; raises ValueError/KeyError/TypeError on a malformed dict."""
        if not isinstance(data, dict):
            raise TypeError("metadata is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for name, shape in _ARRAY_FIELDS.items():
            arr = np.asarray(kwargs[name], dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
            kwargs[name] = arr
        kwargs["source_size"] = tuple(int(v) for v in kwargs["source_size"])
        kwargs["source_rect"] = tuple(float(v) for v in kwargs["source_rect"])
        kwargs["image_size"] = int(kwargs["image_size"])
        FaceType(kwargs["face_type"])  # raises ValueError on an unknown face type
        return cls(**kwargs)

    @property
    def image_from_face(self) -> np.ndarray:
        """(2, 3) inverse of ``face_from_image``: aligned-face (x, y, 1) to source-frame (x, y)."""
        full = np.vstack([self.face_from_image, [0.0, 0.0, 1.0]])
        return np.linalg.inv(full)[:2]
