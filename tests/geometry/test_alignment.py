"""Alignment maths against hand-made transforms and OpenCV's own estimates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab.geometry.alignment import (
    FACE_TYPE_SQUARE, compose, face_from_landmarks, face_square_in_frame, invert_affine, mean_face_landmarks,
    transform_points, umeyama, unwarp_face, warp_face,
)
from facelab.geometry.landmarks68 import MEAN_FACE, MIRROR_ORDER, eye_centres, mirror_landmarks
from facelab.types import FaceType


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (40, 2))
    truth = similarity(1.7, 23.0, -40.0, 12.5)
    assert np.allclose(umeyama(src, transform_points(src, truth)), truth, atol=1e-9)


def test_umeyama_matches_opencv_least_squares_on_noisy_points():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (68, 2))
    dst = transform_points(src, similarity(0.6, -10, 30, 40)) + rng.normal(0, 2.0, (68, 2))
    ours = umeyama(src, dst)
    theirs, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    assert np.abs(ours - theirs).max() < 0.5
    # ours is the least-squares optimum, so no other similarity fits better
    assert np.square(transform_points(src, ours) - dst).sum() <= np.square(transform_points(src, theirs) - dst).sum()


def test_umeyama_never_returns_a_reflection():
    src = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.2]])
    mirrored = src * [-1, 1]
    m = umeyama(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_face_from_landmarks_puts_a_moved_mean_face_exactly_on_the_canonical_points():
    size = 256
    canonical = mean_face_landmarks("full", size)
    frame_from_face = similarity(2.3, 31.0, 400.0, 120.0)
    in_frame = transform_points(canonical, frame_from_face)
    face_from_frame = face_from_landmarks(in_frame, "full", size)
    assert np.allclose(transform_points(in_frame, face_from_frame), canonical, atol=1e-9)
    assert np.allclose(face_from_frame, invert_affine(frame_from_face), atol=1e-9)


def test_face_types_are_nested_squares_tightest_first():
    # The same face fills less of the image as the face type widens: eye distance shrinks.
    distances = []
    for face_type in FaceType:
        left, right = eye_centres(mean_face_landmarks(face_type, 256))
        distances.append(right[0] - left[0])
        assert abs(left[1] - right[1]) < 1e-9 and abs((left[0] + right[0]) / 2 - 128) < 1e-9
    assert distances == sorted(distances, reverse=True)
    assert set(FACE_TYPE_SQUARE) == set(FaceType)
    # half face: the inner points span the whole width
    half = mean_face_landmarks("half", 100)
    assert half[17:, 0].min() == pytest.approx(0) and half[17:, 0].max() == pytest.approx(100)


def test_mean_face_is_left_right_symmetric():
    assert np.allclose(mirror_landmarks(MEAN_FACE, 1.0), MEAN_FACE, atol=1e-12)
    assert sorted(MIRROR_ORDER) == list(range(68)) and np.array_equal(MIRROR_ORDER[MIRROR_ORDER], np.arange(68))


def test_warp_follows_the_pixel_corner_convention():
    # A frame whose pixel (col 10, row 20) is white; scaling by 2 about the origin must put it at
    # pixels 20..21 × 40..41 (pixel corners: [10, 11) → [20, 22)).
    frame = np.zeros((50, 50), np.uint8)
    frame[20, 10] = 255
    out = warp_face(frame, similarity(2.0, 0, 0, 0), 100, interpolation=cv2.INTER_NEAREST)
    assert set(zip(*np.nonzero(out))) == {(40, 20), (40, 21), (41, 20), (41, 21)}


def test_unwarp_inverts_warp_inside_the_face_square():
    rng = np.random.default_rng(2)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    face_from_frame = similarity(0.9, 12.0, -60.0, -10.0)
    face = warp_face(frame, face_from_frame, 160)
    back = unwarp_face(face, face_from_frame, (320, 240))
    inside = unwarp_face(np.full((160, 160), 255, np.uint8), face_from_frame, (320, 240), cv2.INTER_NEAREST) == 255
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.sum() > 10000
    assert np.abs(back[inside].astype(int) - frame[inside].astype(int)).mean() < 2.0


def test_square_corners_and_composition():
    m = similarity(0.5, 30, 10, -5)
    corners = face_square_in_frame(m, 64)
    assert np.allclose(transform_points(corners, m), [[0, 0], [64, 0], [64, 64], [0, 64]])
    n = similarity(1.5, -10, 3, 4)
    p = np.array([[7.0, 9.0]])
    assert np.allclose(transform_points(p, compose(n, m)), transform_points(transform_points(p, m), n))
