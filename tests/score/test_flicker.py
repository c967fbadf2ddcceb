"""Flicker on real frames: a still sequence, an unswapped video, and a face that changes when dst does not."""

from __future__ import annotations

import numpy as np
import pytest

from facelab.extract import extract_faces
from facelab.geometry.masks import hull_mask
from facelab.score.flicker import change_ratio, region_change


@pytest.fixture(scope="module")
def frames_and_region(dst_first_frames):
    frames = dst_first_frames
    (_, meta), = extract_faces(frames[0], max_faces=1)
    return frames, hull_mask(meta.source_landmarks, *frames[0].shape[:2])


def test_still_sequence_has_no_flicker(frames_and_region):
    frames, region = frames_and_region
    still = [frames[0]] * 4
    changes = [region_change(a, b, a, b, region) for a, b in zip(still, still[1:])]
    assert all(c.flicker == 0 and c.merged_change == 0 and c.dst_change == 0 for c in changes)


def test_unswapped_video_has_no_flicker_but_changes(frames_and_region):
    frames, region = frames_and_region
    change = region_change(frames[0], frames[1], frames[0], frames[1], region)
    assert change.flicker == 0
    assert change.dst_change > 0.5 and change.merged_change == change.dst_change  # the real video moves


def test_a_face_that_changes_alone_flickers(frames_and_region):
    frames, region = frames_and_region
    rng = np.random.default_rng(0)
    noisy = np.clip(frames[0].astype(int) + rng.integers(-20, 21, frames[0].shape), 0, 255).astype(np.uint8)
    change = region_change(frames[0], noisy, frames[0], frames[0], region)  # dst still, merged face changes
    assert change.dst_change == 0
    assert change.flicker == pytest.approx(change.merged_change)
    assert 8 < change.flicker < 12  # mean |uniform(-20, 20)| = 10.5, a little less where clipped
    outside = region_change(frames[0], noisy, frames[0], frames[0], np.zeros_like(region))
    assert outside.flicker == 0  # nothing counted outside the face


def test_change_ratio():
    assert change_ratio(np.array([2.0, 4.0]), np.array([1.0, 2.0])) == pytest.approx(2.0)
    assert np.isnan(change_ratio(np.array([1.0]), np.array([0.0])))


def test_frames_must_match_in_size(frames_and_region):
    frames, region = frames_and_region
    with pytest.raises(ValueError):
        region_change(frames[0], frames[1][:100], frames[0], frames[1], region)
