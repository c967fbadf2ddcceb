"""Does the merged face keep dst's expression? Mean 68-landmark distance, in units of the inter-ocular distance.

The normaliser is the distance between the outer eye corners (points 36 and 45), the usual one for iBUG-68
landmark errors (300-W), so the number does not depend on the face's size in the frame.
"""

from __future__ import annotations

import numpy as np

OUTER_EYE_CORNERS = (36, 45)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """(...) distance between the outer eye corners of (..., 68, 2) landmarks (same units as the points)."""
    points = np.asarray(landmarks, np.float64)
    return np.linalg.norm(points[..., OUTER_EYE_CORNERS[0], :] - points[..., OUTER_EYE_CORNERS[1], :], axis=-1)


def landmark_error(merged: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(...) mean point-to-point distance between (..., 68, 2) merged and dst landmarks (same pixel space),
    divided by dst's inter-ocular distance. 0 = the same points; about 0.05 is typical detector jitter."""
    merged, dst = np.asarray(merged, np.float64), np.asarray(dst, np.float64)
    if merged.shape != dst.shape or merged.shape[-2:] != (68, 2):
        raise ValueError(f"need two (..., 68, 2) landmark arrays of one shape, got {merged.shape} and {dst.shape}")
    return np.linalg.norm(merged - dst, axis=-1).mean(-1) / np.maximum(inter_ocular(dst), 1e-9)
