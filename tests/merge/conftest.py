"""Real faces for the merge tests: the man of single_face.jpg as the dst, a woman of multi_face.jpg standing in
for a model's prediction (a real face of another person, aligned the same way)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from facelab.extract.extractor import extract_faces
from facelab.merge.merger import PredictedFace, model_face_from_frame
from facelab.types import FaceMeta

RESOLUTION = 128


@dataclass(frozen=True)
class DstFrame:
    frame: np.ndarray      # (H, W, 3) uint8 BGR
    meta: FaceMeta         # the dst face's metadata (full face)
    other_face: np.ndarray  # (R, R, 3) float32 [0, 1]: another person's aligned face

    @property
    def resolution(self) -> int:
        return self.other_face.shape[0]

    def predicted(self) -> PredictedFace:
        return PredictedFace(self.meta, model_face_from_frame(self.meta, "full", RESOLUTION), self.other_face)


@pytest.fixture(scope="session")
def dst(single_face_jpg, multi_face_jpg) -> DstFrame:
    frame = cv2.imread(str(single_face_jpg))
    (_, meta), = extract_faces(frame, face_type="full", image_size=256, source_filename="00001.png", max_faces=1)
    others = extract_faces(cv2.imread(str(multi_face_jpg)), face_type="full", image_size=RESOLUTION)
    return DstFrame(frame, meta, others[0][0].astype(np.float32) / 255.0)
