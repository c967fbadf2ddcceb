"""Axis-aligned boxes as (N, 4) float arrays (x0, y0, x1, y1) in pixels: overlap and non-maximum suppression."""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    A box is dropped when its overlap with a better kept box exceeds ``threshold``; overlap is
    intersection / union (``mode="union"``) or intersection / the smaller area (``mode="min"``, which also
    removes a small box lying inside a big one).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.clip(np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        if mode == "union":
            overlap = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-12)
        else:
            overlap = inter / np.maximum(np.minimum(areas[best], areas[rest]), 1e-12)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def box_from_points(points: np.ndarray) -> tuple[float, float, float, float]:
    """The tightest box (x0, y0, x1, y1) around (N, 2) points."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    return float(x0), float(y0), float(x1), float(y1)
