"""Head pose from landmarks: zero for the mean face, the documented signs, exact mirror antisymmetry."""

import numpy as np
import pytest

from facelab.geometry.alignment import mean_face_landmarks, transform_points
from facelab.geometry.landmarks68 import mirror_landmarks
from facelab.geometry.pose import pose_from_landmarks


def test_mean_face_is_frontal():
    assert pose_from_landmarks(mean_face_landmarks("full", 256)) == pytest.approx((0, 0, 0), abs=1e-6)


def test_roll_sign_is_clockwise_on_screen():
    points = mean_face_landmarks("full", 256)
    a = np.radians(15)  # y points down, so this rotation turns the face clockwise on screen
    turned = transform_points(points, np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0]]))
    pitch, yaw, roll = pose_from_landmarks(turned)
    assert roll == pytest.approx(15, abs=1e-6) and yaw == pytest.approx(0, abs=1e-6)
    assert pitch == pytest.approx(0, abs=1e-6)


def test_upside_down_face_has_roll_180_and_keeps_its_yaw():
    points = mean_face_landmarks("full", 256).copy()
    points[27:36, 0] += 12
    pitch, yaw, _ = pose_from_landmarks(points)
    p2, y2, r2 = pose_from_landmarks(256 - points)  # turned by a half turn about the centre
    assert abs(r2) == pytest.approx(180, abs=1e-6) and (p2, y2) == pytest.approx((pitch, yaw), abs=1e-6)


def test_yaw_and_pitch_signs():
    points = mean_face_landmarks("full", 256).copy()
    to_right = points.copy()
    to_right[27:36, 0] += 12  # nose shifted toward the image's right: face turned that way
    assert pose_from_landmarks(to_right)[1] > 3
    looking_up = points.copy()
    looking_up[30, 1] -= 10  # nose tip nearer the eyes: chin raised
    assert pose_from_landmarks(looking_up)[0] > 5


def test_mirrored_face_gives_opposite_yaw_and_roll():
    rng = np.random.default_rng(3)
    points = mean_face_landmarks("full", 256) + rng.normal(0, 3, (68, 2))
    points[27:36, 0] += 9
    pitch, yaw, roll = pose_from_landmarks(points)
    for flipped in (mirror_landmarks(points, 256), points * [-1, 1] + [256, 0]):  # re-ordered or not
        p2, y2, r2 = pose_from_landmarks(flipped)
        assert (p2, y2, r2) == pytest.approx((pitch, -yaw, -roll), abs=1e-9)


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="68, 2"):
        pose_from_landmarks(np.zeros((5, 2)))
