"""Face alignment maths: Umeyama similarity, the face-type squares, warps to and from the aligned face.

Conventions (as in ``facelab.types``): points are (x, y) float pixels with the origin at the top-left
*corner* of the top-left pixel, so pixel (col, row) covers [col, col+1) × [row, row+1) and its centre is
(col + 0.5, row + 0.5). A (2, 3) affine matrix ``b_from_a`` maps a column (x, y, 1) in space a to (x, y) in
space b. The aligned face is a ``size`` × ``size`` square; ``face_from_frame`` maps frame → aligned face.
OpenCV samples at pixel centres; ``warp_face``/``unwarp_face`` convert so callers never have to.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelab.geometry.landmarks68 import INNER, MEAN_FACE
from facelab.types import FaceType

# Each face type is a square in the mean face's unit coordinates (inner points span 0..1):
# centred at (0.5, 0.5 - up), side 1 + 2 * pad. Wider types also move up to take in forehead and hair.
FACE_TYPE_SQUARE: dict[FaceType, tuple[float, float]] = {
    FaceType.HALF: (0.0, 0.0),          # brows to lower lip, eye corner to eye corner
    FaceType.MID_FULL: (0.12, 0.0),
    FaceType.FULL: (0.28, 0.0),         # whole inner face with the chin
    FaceType.WHOLE_FACE: (0.45, 0.08),  # plus forehead and cheeks to the ears
    FaceType.HEAD: (0.80, 0.22),        # the whole head and some neck
}


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) taking ``src`` onto ``dst``.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point patterns".
    ``src``, ``dst``: (N, 2) float, N >= 2, corresponding points. Returns the (2, 3) ``dst_from_src`` matrix.
    Reflections are never returned (the sign fix on the smallest singular value).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama needs two (N, 2) arrays of the same shape, got {src.shape} and {dst.shape}")
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c ** 2).sum() / len(src)
    scale = float((s * d).sum() / var_src) if estimate_scale and var_src > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rotation
    out[:, 2] = mu_dst - out[:, :2] @ mu_src
    return out


def mean_face_landmarks(face_type: str | FaceType, size: int) -> np.ndarray:
    """The canonical 68 points (68, 2) in aligned-face pixels for ``face_type`` and output ``size``."""
    pad, up = FACE_TYPE_SQUARE[FaceType(face_type)]
    side = 1.0 + 2.0 * pad
    origin = np.array([0.5 - side / 2, 0.5 - up - side / 2])
    return (MEAN_FACE - origin) * (size / side)


def face_from_landmarks(landmarks68: np.ndarray, face_type: str | FaceType, size: int) -> np.ndarray:
    """(2, 3) ``face_from_frame``: the similarity putting the frame's 68 landmarks onto the mean face.

    Fitted on the 51 inner points (brows, eyes, nose, mouth); the jaw line follows expression and pose
    too much to be a stable reference.
    """
    landmarks68 = np.asarray(landmarks68, dtype=np.float64)
    if landmarks68.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {landmarks68.shape}")
    return umeyama(landmarks68[INNER], mean_face_landmarks(face_type, size)[INNER])


def transform_points(points: np.ndarray, b_from_a: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points; returns (N, 2) float64."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(b_from_a, dtype=np.float64)[:, :2].T + b_from_a[:, 2]


def invert_affine(b_from_a: np.ndarray) -> np.ndarray:
    """(2, 3) ``a_from_b`` of an invertible (2, 3) affine ``b_from_a``."""
    full = np.vstack([np.asarray(b_from_a, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def compose(c_from_b: np.ndarray, b_from_a: np.ndarray) -> np.ndarray:
    """(2, 3) ``c_from_a`` = ``c_from_b`` after ``b_from_a``."""
    return (np.vstack([c_from_b, [0, 0, 1]]) @ np.vstack([b_from_a, [0, 0, 1]]))[:2]


def warp_face(frame: np.ndarray, face_from_frame: np.ndarray, size: int,
              interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Cut the aligned face: (H, W[, C]) frame → (size, size[, C]) image of the same dtype.

    Outside the frame the border pixels are repeated, so a face at the frame's edge has no black wedge.
    """
    return cv2.warpAffine(frame, _opencv_matrix(face_from_frame), (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_REPLICATE)


def unwarp_face(face: np.ndarray, face_from_frame: np.ndarray, frame_size: tuple[int, int],
                interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Put an aligned face (or its mask) back in frame space: (S, S[, C]) → (H, W[, C]) with H, W =
    ``frame_size`` given as (width, height). Pixels outside the face square are 0; blending is the caller's.
    """
    return cv2.warpAffine(face, _opencv_matrix(face_from_frame), tuple(int(v) for v in frame_size),
                          flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def face_square_in_frame(face_from_frame: np.ndarray, size: int) -> np.ndarray:
    """The aligned square's 4 corners (4, 2) in frame pixels, clockwise from the face's top-left."""
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    return transform_points(corners, invert_affine(face_from_frame))


def _opencv_matrix(b_from_a: np.ndarray) -> np.ndarray:
    """The same map for OpenCV's pixel-centre indices: x_idx_b = M (x_idx_a + 0.5) - 0.5."""
    m = np.asarray(b_from_a, dtype=np.float64).copy()
    m[:, 2] += m[:, :2].sum(1) * 0.5 - 0.5
    return m
