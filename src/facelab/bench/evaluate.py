"""Scoring a trained model on held-out faces, with the measures of ``facelab.score`` (one implementation each).

- src→src: the model redraws held-out src faces; SSIM and PSNR inside the face's landmark hull.
- dst→src (the swap) of held-out dst faces:
  - identity: dlib descriptor distance to the src person and to the dst person (mean descriptors of the two
    *training* facesets), and the share of swaps nearer to src;
  - sharpness: the swaps' high-frequency energy inside the dst hull ÷ that of real held-out src faces;
  - expression: 68-landmark error of the swap against the dst face, in inter-ocular distances. Both sides are
    measured alike: the landmark predictor runs on the swap and on the dst face, from the same starting box.

Faces are re-cut at the model's face type and resolution; the landmark predictor and the descriptor network
see them enlarged to ``MEASURE_SIZE`` px (dlib's models want faces bigger than 64 px).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facelab.bench.holdout import BenchData
from facelab.extract.detectors import BoxFit
from facelab.extract.landmarks import LandmarkPredictor, refit_box
from facelab.faceset.identity import FaceDescriber
from facelab.geometry.boxes import box_from_points
from facelab.score import expression, identity, reconstruction, sharpness
from facelab.score.runner import faceset_descriptors, read_faces

EVAL_FACES = 32  # held-out faces per side, spread over the block (neighbours are near-duplicates anyway)
IDENTITY_FACES = 64  # training faces per person for the person's mean descriptor (as `facelab score`)
MEASURE_SIZE = 256
_LANDMARK_BOX = BoxFit(0.0, 0.0, 1.0, 1.0)  # a box that is exactly the landmarks' tight box


@dataclass(frozen=True)
class HeldOutFaces:
    """One side's held-out faces at a model's face type and size: (N, R, R, 3) uint8 BGR, their landmarks
    (N, 68, 2) in the R² square from the extraction, hull masks (N, R, R), and landmarks measured again on these
    very pixels (``measured``), which swaps are compared with."""

    faces: np.ndarray
    landmarks: np.ndarray
    masks: np.ndarray
    measured: np.ndarray


def _enlarged(faces: np.ndarray) -> tuple[np.ndarray, float]:
    scale = MEASURE_SIZE / faces.shape[1]
    return np.stack([cv2.resize(f, (MEASURE_SIZE, MEASURE_SIZE), interpolation=cv2.INTER_CUBIC) for f in faces]), scale


class Evaluator:
    """Held-out faces prepared once per (face type, resolution); ``evaluate`` scores any model of that kind."""

    def __init__(self, data: BenchData, faces: int = EVAL_FACES):
        self.data, self.count = data, faces
        self.predictor = LandmarkPredictor()
        self.describer = FaceDescriber()
        self.person = {side: identity.person_descriptor(faceset_descriptors(
            data.folder(side, "train"), IDENTITY_FACES, self.describer, f"{side} person")) for side in ("src", "dst")}
        self._faces: dict[tuple[str, str, int], HeldOutFaces] = {}

    def held_out(self, side: str, face_type: str, size: int) -> HeldOutFaces:
        key = (side, face_type, size)
        if key not in self._faces:
            images, metas = read_faces(self.data.folder(side, "holdout"), self.count)
            faces = reconstruction.model_faces(images, metas, face_type, size)
            landmarks = reconstruction.model_landmarks(metas, face_type, size)
            self._faces[key] = HeldOutFaces(faces, landmarks, reconstruction.hull_masks(landmarks, size),
                                            self.measure_landmarks(faces, landmarks))
        return self._faces[key]

    def measure_landmarks(self, faces: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """(N, 68, 2) landmarks the predictor finds in (N, R, R, 3) faces, started from the box of ``guide``."""
        big, scale = _enlarged(faces) if len(faces) else (faces, 1.0)
        out = np.empty((len(faces), 68, 2), np.float64)
        for i, (image, points) in enumerate(zip(big, guide)):
            box = refit_box(box_from_points(points * scale), _LANDMARK_BOX)
            out[i] = self.predictor.predict(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), box) / scale
        return out

    def identity(self, faces: np.ndarray, landmarks: np.ndarray) -> identity.IdentityScores:
        """Distances of (N, R, R, 3) faces with their (N, 68, 2) landmarks to the src and the dst person."""
        big, scale = _enlarged(faces)
        descriptors = self.describer.describe(list(big), list(landmarks * scale))
        return identity.identity_scores(descriptors, self.person["src"], self.person["dst"])

    def reference(self, face_type: str, size: int) -> dict[str, Any]:
        """What the measures give without a model, at this face type and size: the real held-out dst faces
        (no swap at all) and the real held-out src faces (what a perfect swap would score)."""
        out = {}
        for side in ("src", "dst"):
            held = self.held_out(side, face_type, size)
            ids = self.identity(held.faces, held.measured)
            out[f"real_{side}"] = {"to_src": float(ids.to_src.mean()), "to_dst": float(ids.to_dst.mean()),
                                   "nearer_to_src": ids.share_nearer_to_src, "faces": len(held.faces)}
        return out

    def evaluate(self, swapper: Any) -> tuple[dict[str, float], np.ndarray]:
        """The held-out measures of a loaded ``facelab.train.swap.Swapper`` (see the module docstring), and its
        swaps of the held-out dst faces, (N, R, R, 3) uint8 BGR."""
        face_type, size = swapper.face_type, swapper.resolution
        src, dst = self.held_out("src", face_type, size), self.held_out("dst", face_type, size)
        redrawn = reconstruction.reconstruct(swapper.model, src.faces, "src", swapper.device)
        psnr = reconstruction.psnr_images(src.faces, redrawn, src.masks)
        swaps = (swapper.predict(dst.faces)[0] * 255).round().clip(0, 255).astype(np.uint8)
        swap_landmarks = self.measure_landmarks(swaps, dst.landmarks)
        ids = self.identity(swaps, swap_landmarks)
        measures = {
            "ssim": float(np.nanmean(reconstruction.ssim_images(src.faces, redrawn, src.masks))),
            "psnr": float(np.mean(psnr[np.isfinite(psnr)])) if np.isfinite(psnr).any() else float("inf"),
            "to_src": float(ids.to_src.mean()), "to_dst": float(ids.to_dst.mean()),
            "nearer_to_src": ids.share_nearer_to_src,
            "sharpness": sharpness.sharpness_ratio(swaps, dst.masks, src.faces, src.masks),
            "expression_error": float(expression.landmark_error(swap_landmarks, dst.measured).mean()),
            "src_faces": len(src.faces), "dst_faces": len(dst.faces),
        }
        return measures, swaps
