"""Pose and expression errors on real landmarks: a mirrored face, a face against itself, moved points."""

from __future__ import annotations

import numpy as np
import pytest

from facelab.extract import extract_faces
from facelab.score.expression import inter_ocular, landmark_error
from facelab.score.pose import angle_difference, pose_error


@pytest.fixture(scope="module")
def turned_face(src_first_frame):
    """The src woman's face and the same frame's face mirrored."""
    frame = src_first_frame
    (_, meta), = extract_faces(frame, max_faces=1)
    (_, mirrored), = extract_faces(np.ascontiguousarray(frame[:, ::-1]), max_faces=1)
    return meta, mirrored


def test_mirrored_face_flips_yaw(turned_face):
    meta, mirrored = turned_face
    assert abs(meta.yaw) > 5
    assert np.sign(mirrored.yaw) == -np.sign(meta.yaw)
    axes, total = pose_error([mirrored.pitch, mirrored.yaw, mirrored.roll], [meta.pitch, meta.yaw, meta.roll])
    assert axes.shape == (1, 3)
    assert axes[0, 1] == pytest.approx(2 * abs(meta.yaw), rel=0.25)  # yaw error: the full swing across
    assert axes[0, 0] < 3  # pitch is unchanged by a mirror
    assert total[0] >= axes[0, 1]


def test_pose_error_of_a_face_with_itself_is_zero(turned_face):
    meta, _ = turned_face
    pose = [meta.pitch, meta.yaw, meta.roll]
    axes, total = pose_error(pose, pose)
    assert total[0] == 0.0 and not axes.any()


def test_angle_difference_wraps_around():
    assert angle_difference(179.0, -179.0) == pytest.approx(-2.0)
    assert angle_difference(-170.0, 170.0) == pytest.approx(20.0)


def test_landmark_error_is_in_eye_distances(turned_face):
    meta, _ = turned_face
    points = meta.source_landmarks
    assert landmark_error(points, points) == 0.0
    iod = inter_ocular(points)
    assert iod > 20  # a real face of a 640x360 frame
    moved = points + [0.1 * iod, 0.0]
    assert landmark_error(moved, points) == pytest.approx(0.1)
    # the same expression change on a face twice as big scores the same
    assert landmark_error(2 * moved, 2 * points) == pytest.approx(0.1)
    # mirroring the expression's points relative to the face is a real change
    assert landmark_error(np.asarray(points)[::-1], points) > 0.5


def test_landmark_error_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        landmark_error(np.zeros((5, 2)), np.zeros((5, 2)))
