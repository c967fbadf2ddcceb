"""Head pose (pitch, yaw, roll) in degrees, estimated from the 68 landmarks alone.

A scale-free geometric estimate (no camera model needed) from where the nose tip sits relative to the jaw
ends, eyes and mouth, with average head proportions: a rough value (not checked against ground truth),
meant to sort and balance a faceset, not to measure. Sign convention (image y points down):

- ``yaw`` > 0: the face is turned toward the image's right (the person's own left when facing the camera);
  a horizontally mirrored face gives the opposite yaw (exactly, with or without re-ordering the points).
- ``pitch`` > 0: the face looks up (chin raised).
- ``roll`` > 0: the head leans so the eye on the image's right is lower (clockwise on screen); the range is
  -180..180, ±180 for an upside-down face.
"""

from __future__ import annotations

import numpy as np

from facelab.geometry.landmarks68 import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, MEAN_FACE, MOUTH, NOSE_TIP

# Head proportions behind the model: the nose tip stands ~1.35 half-face-widths in front of the jaw ends
# (points 0 and 16, near the ears), and ~0.4 eye-to-mouth heights in front of the eye-mouth plane.
_NOSE_DEPTH_OVER_HALF_WIDTH = 1.35
_NOSE_DEPTH_OVER_EYE_MOUTH = 0.4


def _nose_height_ratio(points: np.ndarray) -> float:
    """Where the nose tip sits between the eye line (0) and the mouth centre (1), vertically."""
    eyes_y = (points[EYE_IMAGE_LEFT, 1].mean() + points[EYE_IMAGE_RIGHT, 1].mean()) / 2
    mouth_y = points[MOUTH, 1].mean()
    return float((points[NOSE_TIP, 1] - eyes_y) / max(mouth_y - eyes_y, 1e-9))


_FRONTAL_NOSE_HEIGHT = _nose_height_ratio(MEAN_FACE)


def pose_from_landmarks(landmarks68: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a face with (68, 2) landmarks in any pixel space (frame or aligned):
    the estimate depends on no scale or image size."""
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    left_eye, right_eye = points[EYE_IMAGE_LEFT].mean(0), points[EYE_IMAGE_RIGHT].mean(0)
    dx, dy = right_eye - left_eye
    # The eye line fixes roll up to a half turn; the mouth-to-eyes direction (the face's "up") picks the half.
    # Using the line, not the ordered eye pair, keeps a mirrored face's roll exactly opposite whether or not
    # its points were re-ordered after the flip; an upside-down face gets roll ±180.
    up = (left_eye + right_eye) / 2 - points[MOUTH].mean(0)
    line = np.degrees(np.arctan2(dy, dx))
    roll = float(max((line, line - 180.0 if line > 0 else line + 180.0),
                     key=lambda r: np.sin(np.radians(r)) * up[0] - np.cos(np.radians(r)) * up[1]))
    # Undo the roll around the eye midpoint so yaw and pitch are measured along the face's own axes.
    c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    upright = (points - (left_eye + right_eye) / 2) @ np.array([[c, -s], [s, c]])
    jaw_mid = (upright[0, 0] + upright[16, 0]) / 2
    half_width = max(abs(upright[16, 0] - upright[0, 0]) / 2, 1e-9)
    offset = (upright[NOSE_TIP, 0] - jaw_mid) / half_width
    yaw = float(np.degrees(np.arctan(offset / _NOSE_DEPTH_OVER_HALF_WIDTH)))
    shift = _FRONTAL_NOSE_HEIGHT - _nose_height_ratio(upright)
    pitch = float(np.degrees(np.arctan(shift / _NOSE_DEPTH_OVER_EYE_MOUTH)))
    return pitch, yaw, roll
