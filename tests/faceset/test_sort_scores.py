"""The pure sort scores, against OpenCV references, hand-worked cases and real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab.faceset import scores
from facelab.io.faceimage import read_face


@pytest.fixture(scope="module")
def faces(faceset_cache):
    """(image, landmarks) of five real src faces."""
    out = []
    for name in faceset_cache.src[:5]:
        image, meta = read_face(faceset_cache.folder / name)
        out.append((image, meta.landmarks))
    return out


def test_hellinger_equals_opencv_bhattacharyya(faces):
    hists = np.stack([scores.colour_histogram(img) for img, _ in faces])
    got = scores.hellinger_rows(np.sqrt(hists), slice(0, len(hists)))
    for i in range(len(hists)):
        for j in range(len(hists)):
            want = cv2.compareHist(hists[i], hists[j], cv2.HISTCMP_BHATTACHARYYA)
            assert got[i, j] == pytest.approx(want, abs=2e-3)
    assert np.allclose(np.diag(got), 0, atol=2e-3)


def test_sharpness_drops_with_blur_inside_the_face_only(faces):
    image, landmarks = faces[0]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = scores.hull_mask(landmarks, grey.shape)
    assert 0.2 < mask.mean() < 0.9
    sharp = scores.sharpness(grey, mask)
    assert scores.sharpness(cv2.GaussianBlur(grey, (0, 0), 1.5), mask) < 0.5 * sharp
    # Blurring only what lies outside the face leaves the score unchanged.
    outside_blurred = np.where(mask.astype(bool), grey, cv2.GaussianBlur(grey, (0, 0), 3))
    assert scores.sharpness(outside_blurred, mask) == pytest.approx(sharp, rel=0.02)


def test_motion_blur_removes_detail_along_one_direction(faces):
    image, landmarks = faces[1]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = scores.hull_mask(landmarks, grey.shape)
    kernel = np.zeros((9, 9), np.float32)
    kernel[4, :] = 1 / 9  # a horizontal smear
    smeared = cv2.filter2D(grey, -1, kernel)
    assert scores.motion_sharpness(smeared, mask) < 0.1 * scores.motion_sharpness(grey, mask)
    # Overall sharpness misses most of it: detail across the smear survives.
    assert scores.sharpness(smeared, mask) > 0.25 * scores.sharpness(grey, mask)


def test_hue_is_a_circular_mean():
    hsv = np.zeros((2, 2, 3), np.uint8)
    hsv[0, :, 0] = round(350 / 360 * 256) % 256  # two reds either side of 0°
    hsv[1, :, 0] = round(10 / 360 * 256)
    hsv[..., 1:] = 255
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)
    got = scores.hue(bgr, np.ones((2, 2), np.uint8))
    assert min(got, 360 - got) < 3  # a plain mean would say ~180°


def test_black_fraction_counts_the_black_area(faces):
    image = faces[2][0].copy()
    before = scores.black_fraction(image)
    image[:, :48] = 0
    after = scores.black_fraction(image)
    assert after - before == pytest.approx(48 / 128 * (1 - before), abs=0.05)
    assert scores.black_fraction(np.zeros((8, 8, 3), np.uint8)) == 1.0


def test_similarity_chain_visits_nearest_first():
    hists = np.array([[1, 0, 0], [0, 0, 1], [0.9, 0.1, 0], [0, 0.1, 0.9]], np.float32)
    assert scores.similarity_chain(hists).tolist() == [0, 2, 3, 1]


def test_dissimilarity_is_low_for_faces_with_look_alikes():
    hists = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    d = scores.dissimilarity(hists, block=3)
    assert d[3] == pytest.approx(3.0)
    assert d[:3] == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("counts,total,want", [
    ([10, 1, 0, 5], 9, [4, 1, 0, 4]),
    ([10, 1, 0, 5], 10, [5, 1, 0, 4]),
    ([3, 3], 100, [3, 3]),
    ([0, 7, 0], 2, [0, 2, 0]),
])
def test_yaw_quotas_fill_evenly(counts, total, want):
    assert scores.yaw_quotas(np.array(counts), total).tolist() == want


def test_select_best_spreads_over_yaw_and_prefers_sharp():
    rng = np.random.default_rng(0)
    yaw = np.concatenate([rng.uniform(-5, 5, 90), rng.uniform(30, 40, 10)])  # profiles are rare
    pitch = rng.uniform(-20, 20, 100)
    sharp = rng.uniform(0, 1, 100)
    kept, discarded = scores.select_best(yaw, pitch, sharp, rng.uniform(0, 1, 100), 20, yaw_bins=4)
    assert len(kept) == 20 and len(set(kept)) == 20
    assert sorted(np.concatenate([kept, discarded]).tolist()) == list(range(100))
    assert (yaw[kept] > 25).sum() >= 4  # the rare profiles get their share of the quota
    frontal_kept = kept[yaw[kept] < 25]
    assert sharp[frontal_kept].mean() > sharp[yaw < 25].mean()


def test_cluster_by_distance_largest_group_first():
    a = np.array([[0, 0], [0.1, 0], [0, 0.1]])
    b = np.array([[5, 5], [5.1, 5]])
    labels = scores.cluster_by_distance(np.concatenate([b, a]), threshold=0.5)
    assert labels.tolist() == [1, 1, 0, 0, 0]
