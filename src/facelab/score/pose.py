"""Does the merged face move like dst? Head-pose difference (degrees) between the merged and the dst face.

Poses are ``facelab.geometry.pose`` estimates from the 68 landmarks (pitch, yaw, roll in degrees, see there for
the sign convention: a mirrored face has the opposite yaw and roll).
"""

from __future__ import annotations

import numpy as np


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` in degrees, wrapped to [-180, 180) (roll ±180 are the same pose)."""
    return (np.asarray(a, np.float64) - np.asarray(b, np.float64) + 180.0) % 360.0 - 180.0


def pose_error(merged: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose differences of (N, 3) merged and (N, 3) dst (pitch, yaw, roll) in degrees.

    Returns (per-axis absolute differences (N, 3), overall error (N,) = Euclidean norm of the three).
    """
    diff = np.abs(angle_difference(np.reshape(merged, (-1, 3)), np.reshape(dst, (-1, 3))))
    return diff, np.linalg.norm(diff, axis=1)
