"""One frame in, aligned faces with full metadata out: detect → 68 landmarks (two passes) → align → cut.

``Extractor`` keeps the detector and landmark models loaded; ``extract_faces`` is the one-call form that
reuses cached models between calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from functools import lru_cache
from pathlib import PurePath

import cv2
import numpy as np

from facelab import __version__
from facelab.extract.detectors import Detection, Detector, create_detector
from facelab.extract.detectors.manual import Manual
from facelab.extract.landmarks import LandmarkPredictor
from facelab.extract.options import ExtractSettings
from facelab.geometry.alignment import compose, face_from_landmarks, invert_affine, transform_points, warp_face
from facelab.geometry.boxes import box_from_points
from facelab.geometry.pose import pose_from_landmarks
from facelab.types import FaceMeta, FaceType

log = logging.getLogger(__name__)
Face = tuple[np.ndarray, FaceMeta]


def rotated_from_frame(k: int, width: int, height: int) -> np.ndarray:
    """(2, 3) map from a (height, width) frame to ``np.rot90(frame, k)`` (k quarter turns counter-clockwise)."""
    m = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    w, h = width, height
    for _ in range(k % 4):
        # one turn: (x, y) → (y, w - x); the turned image is h wide and w high
        m = compose(np.array([[0.0, 1, 0], [-1, 0, w]]), m)
        w, h = h, w
    return m


@lru_cache(maxsize=4)
def _models(detector: str, device: str) -> tuple[Detector, LandmarkPredictor, threading.Lock]:
    return create_detector(detector, device), LandmarkPredictor(), threading.Lock()


class Extractor:
    """Finds, aligns and cuts every face of a frame.

    ``max_faces`` 0 keeps all; ``min_face_size`` drops detections whose box's longer side is smaller (px);
    ``rotate_retry`` tries the frame turned by 90°, 180° and 270° when nothing is found upright.
    """

    def __init__(self, detector: str | None = None, *, device: str = "cpu", rectangles: dict[str, list] | None = None,
                 **settings):
        """``settings``: EXTRACT_OPTIONS values (face_type, image_size, max_faces, min_face_size, rotate_retry),
        checked by their options; the ones not given keep the options' defaults. ``device``: one resolved device."""
        chosen = ExtractSettings.of(settings, **({} if detector is None else {"detector": detector}))
        self.detector_name = chosen.detector
        self.detector, self.predictor, self._lock = _models(chosen.detector, str(device))
        self.face_type = FaceType(chosen.face_type).value
        self.image_size, self.max_faces, self.min_face_size = chosen.image_size, chosen.max_faces, chosen.min_face_size
        self.rotate_retry = chosen.rotate_retry
        self.rectangles = rectangles or {}
        self.timings: dict[str, float] = defaultdict(float)  # seconds spent per stage, for benchmarks

    def faces(self, frame_bgr: np.ndarray, source_filename: str = "") -> list[Face]:
        """Aligned faces of one (H, W, 3) uint8 BGR frame, largest first, as (image, metadata) pairs."""
        with self._lock:  # the cached models are shared; dlib and the sessions are not re-entrant
            return self._faces(frame_bgr, source_filename)

    def faces_in_boxes(self, frame_bgr: np.ndarray, boxes: list, source_filename: str = "") -> list[Face]:
        """Aligned faces for rectangles (x0, y0, x1, y1) the user drew (the manual pass), largest first."""
        with self._lock:
            return self._faces_in_boxes(frame_bgr, boxes, source_filename)

    def _faces(self, frame: np.ndarray, source_filename: str) -> list[Face]:
        if isinstance(self.detector, Manual):
            return self._faces_manual(frame, source_filename)
        start = time.perf_counter()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        found = self._select(self.detector.detect(frame))
        self.timings["detect"] += time.perf_counter() - start
        if found or not self.rotate_retry:
            return self._align_all(frame, gray, found, source_filename, self.detector.box_fit, self.detector_name)
        height, width = frame.shape[:2]
        for k in (1, 2, 3):
            turned = np.ascontiguousarray(np.rot90(frame, k))
            found = self._select(self.detector.detect(turned))
            if found:
                log.debug("%s: faces found with the frame turned %d°", source_filename, 90 * k)
                return self._turned_back(frame, turned, found, source_filename, rotated_from_frame(k, width, height), k)
        return []

    def _faces_manual(self, frame: np.ndarray, source_filename: str) -> list[Face]:
        boxes = self.rectangles.get(PurePath(source_filename).name, []) if source_filename else []
        return self._faces_in_boxes(frame, boxes, source_filename)

    def _faces_in_boxes(self, frame: np.ndarray, boxes: list, source_filename: str) -> list[Face]:
        height, width = frame.shape[:2]
        inside = [b for b in boxes if b[0] < width and b[1] < height and b[2] > 0 and b[3] > 0]
        if len(inside) < len(boxes):
            log.warning("%s: %d rectangle(s) outside the %d×%d frame skipped", source_filename,
                        len(boxes) - len(inside), width, height)
        detections = [Detection(tuple(float(v) for v in b), 1.0) for b in inside]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return self._align_all(frame, gray, self._select(detections), source_filename, Manual.box_fit, "manual")

    def _select(self, found: list[Detection]) -> list[Detection]:
        found = [d for d in found if d.size >= self.min_face_size]
        found.sort(key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), reverse=True)
        return found[: self.max_faces] if self.max_faces > 0 else found

    def _align_all(self, frame, gray, found, source_filename, fit, detector_name) -> list[Face]:
        return [self._align(frame, gray, d, n, source_filename, fit, detector_name) for n, d in enumerate(found)]

    def _align(self, frame: np.ndarray, gray: np.ndarray, det: Detection, index: int, source_filename: str,
               fit, detector_name: str) -> Face:
        start = time.perf_counter()
        source_landmarks = self.predictor.landmarks(gray, det.box, fit)
        aligned_at = time.perf_counter()
        self.timings["landmarks"] += aligned_at - start
        face_from_frame = face_from_landmarks(source_landmarks, self.face_type, self.image_size)
        image = warp_face(frame, face_from_frame, self.image_size)
        pitch, yaw, roll = pose_from_landmarks(source_landmarks)
        height, width = frame.shape[:2]
        meta = FaceMeta(
            face_type=self.face_type, image_size=self.image_size,
            landmarks=transform_points(source_landmarks, face_from_frame),
            source_filename=source_filename, source_size=(width, height), source_rect=det.box,
            source_landmarks=source_landmarks, face_from_image=face_from_frame,
            detector=detector_name, score=det.score, pitch=pitch, yaw=yaw, roll=roll,
            face_index=index, tool_version=__version__,
        )
        self.timings["align"] += time.perf_counter() - aligned_at
        return image, meta

    def _turned_back(self, frame, turned, found, source_filename, turned_from_frame, k) -> list[Face]:
        """Faces found in the turned frame, re-expressed in (and re-cut from) the original frame."""
        frame_from_turned = invert_affine(turned_from_frame)
        gray = cv2.cvtColor(turned, cv2.COLOR_BGR2GRAY)
        out = []
        for image, meta in self._align_all(turned, gray, found, source_filename, self.detector.box_fit,
                                           self.detector_name):
            corners = np.array([[meta.source_rect[0], meta.source_rect[1]], [meta.source_rect[2], meta.source_rect[3]]])
            meta.source_landmarks = transform_points(meta.source_landmarks, frame_from_turned)
            meta.source_rect = box_from_points(transform_points(corners, frame_from_turned))
            meta.face_from_image = compose(meta.face_from_image, turned_from_frame)
            meta.source_size = (frame.shape[1], frame.shape[0])
            meta.pitch, meta.yaw, meta.roll = pose_from_landmarks(meta.source_landmarks)
            meta.extra["rotation_retry_deg"] = 90 * k
            out.append((warp_face(frame, meta.face_from_image, self.image_size), meta))
        return out


def extract_faces(frame_bgr: np.ndarray, *, source_filename: str = "", device: str = "cpu", **settings) -> list[Face]:
    """Aligned faces (``image_size``² uint8 BGR, FaceMeta) of one BGR frame, largest first; ``settings`` as for
    ``Extractor``.

    Models load on the first call and are reused by later ones.
    """
    return Extractor(device=device, **settings).faces(frame_bgr, source_filename)
