"""Who does the merged face look like? dlib face-descriptor distances to the src and to the dst person.

Descriptors come from ``facelab.faceset.identity`` (dlib's 128-d ResNet): the same person is about 0.35-0.45
apart (Euclidean), different people about 0.75-0.9; dlib's own same-person threshold is 0.6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAME_PERSON_THRESHOLD = 0.6  # dlib's documented decision threshold for its 128-d descriptor


def person_descriptor(descriptors: np.ndarray) -> np.ndarray:
    """(128,) float64: the mean of (N, 128) descriptors of one person's faces (N >= 1)."""
    descriptors = np.asarray(descriptors, dtype=np.float64)
    if descriptors.ndim != 2 or len(descriptors) == 0:
        raise ValueError(f"need (N, D) descriptors with N >= 1, got shape {descriptors.shape}")
    return descriptors.mean(0)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between descriptors: (..., D) and (..., D) broadcast to (...)."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)


@dataclass(frozen=True)
class IdentityScores:
    """Per merged face: distance to the src person and to the dst person; and the share nearer to src."""

    to_src: np.ndarray  # (N,) float64
    to_dst: np.ndarray  # (N,) float64

    @property
    def nearer_to_src(self) -> np.ndarray:
        """(N,) bool: the merged face is nearer to the src person than to the dst person."""
        return self.to_src < self.to_dst

    @property
    def share_nearer_to_src(self) -> float:
        """Fraction (0..1) of merged faces nearer to src: 1 for a convincing swap, 0 for an unchanged video."""
        return float(self.nearer_to_src.mean()) if len(self.to_src) else float("nan")


def identity_scores(merged: np.ndarray, src_person: np.ndarray, dst_person: np.ndarray) -> IdentityScores:
    """Scores of (N, 128) merged-face descriptors against the (128,) src and dst person descriptors."""
    merged = np.asarray(merged, np.float64).reshape(-1, np.shape(src_person)[-1])
    return IdentityScores(descriptor_distance(merged, src_person), descriptor_distance(merged, dst_person))
