"""Face masks as arrays: landmark hulls, and erode/blur sized relative to the face.

Masks are (H, W) float32 in [0, 1]; 1 = face. Points are (x, y) pixels with the origin at the top-left
pixel's corner (``facelab.types``).
"""

from __future__ import annotations

import cv2
import numpy as np

# Mask sizes are given on the seed's scale: a value of 400 is the whole face width, so one unit is
# face_size / 400 pixels whatever the resolution (erode 40 on a 256 px face = a 25.6 px kernel).
SIZE_SCALE = 400.0


def hull_mask(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 mask: 1 inside the convex hull of ``landmarks`` (N, 2) (x, y), 0 outside.

    Anti-aliased at 1/16 px so the hull's area changes smoothly with the points.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    hull = cv2.convexHull(np.round((points - 0.5) * 16).astype(np.int32))
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def kernel_px(value: float, face_size: float) -> int:
    """Kernel size in pixels for a seed-scale ``value`` (see SIZE_SCALE) on a face ``face_size`` px wide; 0 for 0."""
    return int(round(abs(value) * face_size / SIZE_SCALE))


def erode(mask: np.ndarray, value: float, face_size: float) -> np.ndarray:
    """Shrink (value > 0) or grow (value < 0) a (H, W) float mask by an elliptic kernel of ``kernel_px`` pixels."""
    size = kernel_px(value, face_size)
    if size < 1:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    if value > 0:  # outside the image is "not face": a mask filling the square shrinks from its edges too
        return cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(mask, kernel)


def blur(mask: np.ndarray, value: float, face_size: float) -> np.ndarray:
    """Feather a (H, W) float mask with a box blur of ``kernel_px`` pixels, kept inside the image.

    The mask is first cleared within half a kernel of the image edge, so the feathered edge fades to 0
    before the border of the aligned square (no hard cut where the square ends in the frame).
    """
    size = kernel_px(value, face_size)
    if size < 2:
        return mask
    margin = size // 2 + 1
    out = mask.copy()
    out[:margin], out[-margin:], out[:, :margin], out[:, -margin:] = 0, 0, 0, 0
    return np.clip(cv2.blur(out, (size, size)), 0.0, 1.0)
