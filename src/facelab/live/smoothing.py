"""Temporal smoothing of a tracked face's landmarks, and the jitter measure it is judged by.

The filter is a One Euro filter (Casiez, Roussel and Vogel, CHI 2012), written here from the paper's maths: a
first-order low-pass whose cutoff rises with the signal's speed, so a still face is held steady (low cutoff:
jitter removed) and a moving one is followed without lag (high cutoff). Time is counted in frames (dt = 1) and
speed in face sizes per frame, so the same settings fit any frame rate and any face size.

Arrays: landmarks (68, 2) float64 frame pixels (x, y), pixel-corner convention as everywhere in facelab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facelab.geometry.alignment import face_square_in_frame

# Cutoffs in cycles per frame. 0.5 is Nyquist: a filter at that cutoff still passes most of the signal.
MAX_CUTOFF = 0.5
# The speed cutoff and the gain of the cutoff with speed, fixed by measuring the demo dst clip (facelab bench
# live): higher beta follows head turns faster but lets more jitter through while the face moves.
SPEED_CUTOFF = 0.15
BETA = 25.0


@dataclass(frozen=True)
class FilterState:
    """The filter's memory: the last output (68, 2) and its speed (68, 2), in pixels and pixels per frame."""

    value: np.ndarray
    speed: np.ndarray


def smoothing_factor(cutoff: float) -> float:
    """The exponential smoothing weight of the new sample for a first-order low-pass at ``cutoff`` cycles per
    frame: alpha = 1 / (1 + tau), tau = 1 / (2π cutoff) frames."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff))


def min_cutoff(smoothing: float) -> float:
    """The resting cutoff for a ``smoothing`` strength in [0, 1]: 0 = MAX_CUTOFF (almost no smoothing), each
    step of 1/3 divides the cutoff by about 2.7 (1 → MAX_CUTOFF / 20)."""
    return MAX_CUTOFF * 20.0 ** (-float(smoothing))


def face_scale(landmarks: np.ndarray) -> float:
    """The face's size in pixels: the diagonal of the box around its landmarks (at least 1)."""
    span = landmarks.max(0) - landmarks.min(0)
    return max(float(np.hypot(*span)), 1.0)


def rigid_speed(speed: np.ndarray, points: np.ndarray) -> float:
    """How fast the face moves as a whole, in pixels per frame: the least-squares similarity motion (shift,
    rotation, scaling) of the ``speed`` field (N, 2) at ``points`` (N, 2), as the shift's length plus the turn
    and growth at the points' RMS distance from their centre."""
    centred = points - points.mean(0)
    shift = speed.mean(0)
    d = speed - shift
    norm = float((centred ** 2).sum()) or 1.0
    grow = float((centred * d).sum()) / norm
    turn = float((centred[:, 0] * d[:, 1] - centred[:, 1] * d[:, 0]).sum()) / norm
    return float(np.hypot(*shift)) + float(np.hypot(grow, turn)) * float(np.sqrt(norm / len(points)))


def one_euro(sample: np.ndarray, state: FilterState | None, smoothing: float,
             beta: float = BETA) -> tuple[np.ndarray, FilterState]:
    """(filtered landmarks, new state) for one new ``sample``; ``state`` None starts a new track (the sample
    passes as is). ``smoothing`` 0 turns the filter off."""
    sample = np.asarray(sample, np.float64)
    if state is None or smoothing <= 0:
        return sample, FilterState(sample, np.zeros_like(sample))
    speed = state.speed + smoothing_factor(SPEED_CUTOFF) * ((sample - state.value) - state.speed)
    # One cutoff for the whole face, from its rigid motion: points filtered alike keep the face's shape, and the
    # fit over 68 points averages away most of each point's own noise (which a mean of speeds would keep).
    relative_speed = rigid_speed(speed, state.value) / face_scale(sample)
    cutoff = min(min_cutoff(smoothing) + beta * relative_speed, MAX_CUTOFF)
    value = state.value + smoothing_factor(cutoff) * (sample - state.value)
    return value, FilterState(value, speed)


def jitter(face_from_frames: list[np.ndarray], size: int) -> float:
    """Frame-to-frame jitter of an aligned face, in percent of the face's size: the mean length of the second
    difference (x[t+1] - 2 x[t] + x[t-1]) of the aligned square's four corners in the frame, over the square's
    side. Steady motion (constant speed) counts 0; the shake a viewer sees counts.

    ``face_from_frames``: one (2, 3) frame → aligned matrix per consecutive frame of one face, the square of
    side ``size``. NaN with fewer than three frames.
    """
    if len(face_from_frames) < 3:
        return float("nan")
    corners = np.stack([face_square_in_frame(m, size) for m in face_from_frames])  # (T, 4, 2)
    second = corners[2:] - 2.0 * corners[1:-1] + corners[:-2]
    side = np.linalg.norm(corners[1:-1, 1] - corners[1:-1, 0], axis=1)  # (T-2,) the top edge's length
    return float(100.0 * (np.linalg.norm(second, axis=2).mean(1) / side).mean())
