"""Face detectors, by name: each finds face boxes in a BGR frame; the 68 landmarks come afterwards.

A detector is a class, one module each, whose constructor takes ``device`` (a torch.device or string) and
whose ``detect(frame_bgr)`` returns ``Detection``s. ``DETECTORS`` maps each name to a factory that imports
the detector's module on first use, so listing detectors (``facelab extract --help``) loads no model
library (torch, onnxruntime, dlib).

Each detector also states ``box_fit``: how its boxes sit relative to the tight box around the 68
landmarks, measured on the src demo video (see tests/extract/test_detectors.py). The landmark step uses it
to give dlib's predictor the box it was trained with, whichever detector found the face.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np

from facelab.registry import Registry


@dataclass(frozen=True)
class Detection:
    """One face found in a frame.

    ``box``: (x0, y0, x1, y1) frame pixels; ``score``: confidence 0..1; ``points5``: (5, 2) eye centres
    (image-left, image-right), nose tip, mouth corners (image-left, image-right) when the detector gives them.
    """

    box: tuple[float, float, float, float]
    score: float
    points5: np.ndarray | None = None

    @property
    def size(self) -> float:
        """The box's longer side in pixels."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass(frozen=True)
class BoxFit:
    """A detector box relative to the tight box around the face's 68 landmarks (``L``): centre offset in
    units of L's width/height and size as a multiple of L's width/height."""

    dx: float
    dy: float
    width: float
    height: float


class Detector(Protocol):
    name: str
    box_fit: BoxFit

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


DETECTORS: Registry[Callable[..., Detector]] = Registry("detector")


def shrink_to(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(image, scale): ``image`` resized so its long side is at most ``max_side`` (never enlarged), and the factor
    applied, so detections found in it map back to the original by dividing by ``scale``."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return image, scale
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _lazy(module: str, cls: str) -> Callable[..., Detector]:
    def create(**kwargs) -> Detector:
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**kwargs)

    return create


for _name, _module, _cls in (("retinaface", "retinaface", "RetinaFace"), ("mtcnn", "mtcnn", "Mtcnn"),
                             ("hog", "hog", "Hog"), ("manual", "manual", "Manual")):
    DETECTORS.register(_name)(_lazy(_module, _cls))


def create_detector(name: str, device: object = "cpu") -> Detector:
    """A ready detector; OptionError with "did you mean" for an unknown name."""
    return DETECTORS.get(name)(device=device)
