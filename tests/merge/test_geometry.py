"""Mask, colour and blending maths on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab.geometry import alignment, blend, colour, masks
from facelab.merge.merger import model_face_from_frame

RESOLUTION = 128  # the conftest's model resolution (dst.resolution)


@pytest.fixture(scope="module")
def aligned(dst):
    """(dst face, other face, hull mask) at the model resolution, float32."""
    matrix = model_face_from_frame(dst.meta, "full", RESOLUTION)
    face = alignment.warp_face(dst.frame, matrix, RESOLUTION).astype(np.float32) / 255.0
    points = alignment.transform_points(dst.meta.source_landmarks, matrix)
    return face, dst.other_face, masks.hull_mask(points, RESOLUTION, RESOLUTION)


def test_hull_mask_covers_the_landmarks(aligned, dst):
    _, _, hull = aligned
    points = alignment.transform_points(dst.meta.source_landmarks, model_face_from_frame(dst.meta, "full", RESOLUTION))
    inner = np.round(points[17:]).astype(int)  # brows, eyes, nose, mouth lie strictly inside the hull
    assert hull[inner[:, 1], inner[:, 0]].min() > 0.99
    assert 0.2 < hull.mean() < 0.8
    assert hull[0, 0] == 0 and hull[-1, -1] == 0


def test_erode_shrinks_and_grows_monotonically(aligned):
    _, _, hull = aligned
    areas = [masks.erode(hull, v, RESOLUTION).sum() for v in (-200, -100, -40, 0, 40, 100, 200)]
    assert all(a > b for a, b in zip(areas, areas[1:])), areas


def test_erode_shrinks_a_mask_that_fills_the_square_from_its_edges():
    # An untrained model's learned mask is often all ones: erode must still pull it in from the border.
    full = np.ones((RESOLUTION, RESOLUTION), np.float32)
    eroded = masks.erode(full, 100, RESOLUTION)
    margin = masks.kernel_px(100, RESOLUTION) // 2 - 1  # an even kernel sits one pixel off centre
    assert eroded[:margin].max() == 0 and eroded[:, -margin:].max() == 0
    assert eroded[RESOLUTION // 2, RESOLUTION // 2] == 1


def test_kernel_is_relative_to_face_size():
    assert masks.kernel_px(100, 256) == 64 and masks.kernel_px(100, 128) == 32 and masks.kernel_px(0, 512) == 0


def test_blur_feathers_but_stays_inside_the_square(aligned):
    _, _, hull = aligned
    soft = masks.blur(hull, 40, RESOLUTION)
    assert soft.max() <= 1.0 and soft.min() >= 0.0
    partial = ((soft > 0.02) & (soft < 0.98)).sum()
    assert partial > 3 * ((hull > 0.02) & (hull < 0.98)).sum()  # a wider soft edge than the anti-aliased hull
    assert soft[0].max() == 0 and soft[:, -1].max() == 0


def _lab_stats(image, mask):
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[mask > 0.5]
    return lab.mean(0), lab.std(0)


def test_rct_moves_lab_mean_and_std_to_the_dst(aligned):
    dst_face, other, hull = aligned
    before_mean, _ = _lab_stats(other, hull)
    target_mean, target_std = _lab_stats(dst_face, hull)
    out = colour.rct(other, dst_face, hull)
    mean, std = _lab_stats(out, hull)
    assert np.abs(before_mean - target_mean).max() > 3  # the two faces really differ
    np.testing.assert_allclose(mean, target_mean, atol=1.0)
    np.testing.assert_allclose(std, target_std, rtol=0.1, atol=0.5)


@pytest.mark.parametrize("name", ["lct", "mkl-m"])
def test_linear_transfers_match_the_colour_covariance(aligned, name):
    dst_face, other, hull = aligned
    out = colour.COLOUR_TRANSFERS.get(name)(other, dst_face, hull)
    inside = hull > 0.5
    np.testing.assert_allclose(out[inside].mean(0), dst_face[inside].mean(0), atol=0.01)
    target = np.cov(dst_face[inside].T)
    # Weighted by the soft mask and clipped to [0, 1], so equal within a few percent, far closer than before.
    assert np.abs(np.cov(out[inside].T) - target).max() < 0.06 * np.abs(target).max()
    assert np.abs(np.cov(other[inside].T) - target).max() > 3 * np.abs(np.cov(out[inside].T) - target).max()


def test_sot_and_hist_match_move_the_distribution(aligned):
    dst_face, other, hull = aligned
    inside = hull > 0.5
    target = np.quantile(dst_face[inside], [0.1, 0.5, 0.9], axis=0)
    gap = np.abs(np.quantile(other[inside], [0.1, 0.5, 0.9], axis=0) - target).max()
    for out in (colour.sot(other, dst_face, hull), colour.idt(other, dst_face, hull),
                colour.hist_match(other, dst_face, hull)):
        assert out.shape == other.shape and out.dtype == np.float32
        assert np.abs(np.quantile(out[inside], [0.1, 0.5, 0.9], axis=0) - target).max() < gap / 3


def _channel_stats(image, where):
    """Per-channel (mean, std) of the (H, W, 3) image's pixels where ``where`` is True."""
    return image[where].mean(0), image[where].std(0)


@pytest.mark.parametrize("name", ["mkl-m", "idt-m", "sot-m"])
def test_masked_transfers_match_the_dst_colours_inside_the_mask(aligned, name):
    dst_face, other, hull = aligned
    inside = hull > 0.5
    target_mean, target_std = _channel_stats(dst_face, inside)
    before_mean, before_std = _channel_stats(other, inside)
    assert np.abs(before_mean - target_mean).max() > 0.05  # the two faces really differ
    assert np.abs(before_std / target_std - 1).max() > 0.08
    mean, std = _channel_stats(colour.COLOUR_TRANSFERS.get(name)(other, dst_face, hull), inside)
    np.testing.assert_allclose(mean, target_mean, atol=0.01)
    np.testing.assert_allclose(std, target_std, rtol=0.05)


@pytest.mark.parametrize("name", ["mkl", "idt", "sot"])
def test_unmasked_transfers_match_the_dst_colours_of_the_whole_square(aligned, name):
    dst_face, other, hull = aligned
    square = np.ones(hull.shape, bool)
    target_mean, target_std = _channel_stats(dst_face, square)
    before_mean, before_std = _channel_stats(other, square)
    assert np.abs(before_mean - target_mean).max() > 0.05 and np.abs(before_std / target_std - 1).max() > 0.3
    out = colour.COLOUR_TRANSFERS.get(name)(other, dst_face, hull)
    mean, std = _channel_stats(out, square)
    np.testing.assert_allclose(mean, target_mean, atol=0.01)
    np.testing.assert_allclose(std, target_std, rtol=0.1)
    # The mask is ignored: the masked twin gives another face.
    assert np.abs(out - colour.COLOUR_TRANSFERS.get(f"{name}-m")(other, dst_face, hull))[hull > 0.5].mean() > 0.02


def test_idt_recolours_outside_the_mask_by_the_same_smooth_map(aligned):
    dst_face, other, hull = aligned
    out = colour.idt(other, dst_face, hull)
    outside = hull < 0.5
    assert np.abs(out[outside] - other[outside]).mean() > 0.02  # the background moved with the face
    # A smooth map keeps neighbouring pixels' order of brightness almost always.
    before = np.sign(np.diff(other.sum(2), axis=1)).ravel()
    after = np.sign(np.diff(out.sum(2), axis=1)).ravel()
    assert (before == after)[before != 0].mean() > 0.9


def test_hist_match_threshold_damps_the_match(aligned):
    """A lower threshold weakens the match step by step: the result stays further from dst's histogram, but still
    nearer to it than the unmatched face."""
    dst_face, other, hull = aligned
    inside = hull > 0.5
    target = np.quantile(dst_face[inside], [0.1, 0.5, 0.9], axis=0)

    def gap(image):
        return np.abs(np.quantile(image[inside], [0.1, 0.5, 0.9], axis=0) - target).max()

    gaps = [gap(colour.hist_match(other, dst_face, hull, t)) for t in (255, 128, 64, 20)]
    assert gaps[0] < 0.01  # plain matching lands on dst's histogram
    assert all(a < b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < gap(other)


def test_degrade_colours_reduces_distinct_colours(aligned):
    face = aligned[0]
    out = colour.degrade_colours(face, 100)
    assert len(np.unique((out * 255).round().reshape(-1, 3), axis=0)) <= 252
    assert colour.degrade_colours(face, 0) is face


def _patch(dst, alpha_value=None):
    matrix = model_face_from_frame(dst.meta, "full", RESOLUTION)
    points = alignment.transform_points(dst.meta.source_landmarks, matrix)
    hull = masks.hull_mask(points, RESOLUTION, RESOLUTION)
    h, w = dst.frame.shape[:2]
    return blend.warp_to_frame(dst.other_face, hull, matrix, w, h), matrix


def test_warp_to_frame_stays_in_the_face_box(dst):
    patch, matrix = _patch(dst)
    x0, y0, x1, y1 = blend.square_box(matrix, RESOLUTION, dst.frame.shape[1], dst.frame.shape[0])
    assert x0 <= patch.x0 and patch.x0 + patch.alpha.shape[1] <= x1
    assert y0 <= patch.y0 and patch.y0 + patch.alpha.shape[0] <= y1
    assert patch.alpha.min() >= 0 and patch.alpha.max() == pytest.approx(1.0)


def test_seamless_of_the_frame_itself_changes_nothing(dst):
    patch, _ = _patch(dst)
    same = dst.frame[patch.rows, patch.cols].astype(np.float32) / 255.0
    out = blend.seamless(dst.frame, blend.Patch(patch.x0, patch.y0, same, patch.alpha))
    assert np.abs(out.astype(int) - dst.frame.astype(int)).max() <= 2


def _boundary_step(image, alpha):
    """Mean |Δ| of the luma across the mask's edge: pixels just inside vs. just outside."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    inside = (alpha > 0.5).astype(np.uint8)
    ring_in = inside - cv2.erode(inside, np.ones((5, 5), np.uint8))
    ring_out = cv2.dilate(inside, np.ones((5, 5), np.uint8)) - inside
    return abs(grey[ring_in > 0].mean() - grey[ring_out > 0].mean())


def test_seamless_leaves_no_seam(dst):
    patch, _ = _patch(dst)
    bright = blend.Patch(patch.x0, patch.y0, np.clip(patch.face * 0.6 + 0.35, 0, 1), patch.alpha)  # a mismatched face
    full_alpha = np.zeros(dst.frame.shape[:2], np.float32)
    full_alpha[patch.rows, patch.cols] = patch.alpha
    step_overlay = _boundary_step(blend.overlay(dst.frame, bright), full_alpha)
    step_seamless = _boundary_step(blend.seamless(dst.frame, bright), full_alpha)
    step_original = _boundary_step(dst.frame, full_alpha)
    assert step_overlay > step_original + 20  # the test face really is out of place
    assert step_seamless < step_original + 6, (step_seamless, step_original)


def test_overlay_touches_only_alpha_above_zero(dst):
    patch, _ = _patch(dst)
    out = blend.overlay(dst.frame, patch)
    outside = np.ones(dst.frame.shape[:2], bool)
    outside[patch.rows, patch.cols] = patch.alpha <= 0
    assert np.array_equal(out[outside], dst.frame[outside])
    assert not np.array_equal(out, dst.frame)
