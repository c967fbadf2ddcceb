"""dlib's HOG + linear SVM frontal face detector: no extra model files, a light fallback for near-frontal faces."""

from __future__ import annotations

import cv2
import numpy as np

from facelab.extract.detectors import BoxFit, Detection, shrink_to


class Hog:
    """Finds faces of at least ~80 px (40 px with ``upsample=1``); misses faces turned more than ~45°."""

    name = "hog"
    box_fit = BoxFit(dx=-0.01, dy=-0.09, width=1.085, height=1.027)

    def __init__(self, device: object = "cpu", upsample: int = 0, max_side: int = 1280):
        import dlib

        self.upsample, self.max_side = upsample, max_side
        self.detector = dlib.get_frontal_face_detector()

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        gray, scale = shrink_to(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY), self.max_side)
        rects, scores, _ = self.detector.run(gray, self.upsample, 0.0)
        out = []
        for rect, score in zip(rects, scores):
            # dlib boxes are inclusive pixel indices; its SVM margin maps to 0..1 for a comparable score.
            box = (rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale, (rect.bottom() + 1) / scale)
            out.append(Detection(box, float(1.0 / (1.0 + np.exp(-2.0 * score)))))
        return out
