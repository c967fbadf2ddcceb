"""One frame merged: every mode and colour transfer on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab import provenance
from facelab.errors import OptionError
from facelab.geometry import alignment, masks
from facelab.geometry.colour import COLOUR_TRANSFERS
from facelab.merge.masks import MASKS, MaskInputs, build_mask, learned_masks_needed, resolve_mask_name
from facelab.merge.merger import merge_frame, model_face_from_frame
from facelab.merge.modes import MODES
from facelab.merge.options import MERGE_OPTIONS, resolve

OPTION = {o.name: o for o in MERGE_OPTIONS}


def _options(**given):
    return resolve(given).base


def _dilated_hull(dst, pixels: int) -> np.ndarray:
    """The dst face's landmark hull in the frame, grown by ``pixels`` — computed apart from the merger."""
    h, w = dst.frame.shape[:2]
    hull = masks.hull_mask(dst.meta.source_landmarks, h, w) > 0
    return cv2.dilate(hull.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)) > 0


def test_merge_choices_are_the_registries_names():
    assert OPTION["mode"].choices == tuple(MODES.names())
    assert OPTION["colour_transfer"].choices == tuple(COLOUR_TRANSFERS.names())
    assert OPTION["mask"].choices == (*MASKS.names(), "auto")
    assert {"idt", "mkl-m", "idt-m", "sot-m"} <= set(COLOUR_TRANSFERS.names())
    # A mode or a base mask says what it does where it registers: the option's help is made from that.
    for name in MODES.names():
        assert f"{name} = " in OPTION["mode"].help
    for name in (n for n in MASKS.names() if "*" not in n):
        assert f"{name} = " in OPTION["mask"].help
    for name in COLOUR_TRANSFERS.names():
        assert f"{name} = " in OPTION["colour_transfer"].help


def test_merge_prompts_number_the_choices_as_the_seed_does():
    mode, mask = OPTION["mode"], OPTION["mask"]
    assert mode.numbered_choices().startswith(
        "(1) overlay, (2) hist-match, (3) hist-match-bw, (4) seamless (default), (5) raw-rgb")
    assert mask.numbered_choices().startswith("(1) learned, (2) dst, ")
    assert [mode.parse(answer) for answer in ("1", "2", "3", "4", "hist match", "seamless")] == [
        "overlay", "hist-match", "hist-match-bw", "seamless", "hist-match", "seamless"]
    assert mask.parse("2") == "dst" and mask.parse(str(len(mask.choices))) == "auto"
    for wrong in ("0", str(len(mode.choices) + 1), "-1", "seamles", "9" * 5000):
        with pytest.raises(OptionError):
            mode.parse(wrong)


@pytest.mark.parametrize("mode", [m for m in MODES.names() if not m.startswith("raw") and m != "hist-match-bw"])
def test_modes_change_only_the_face(dst, mode):
    out = merge_frame(dst.frame, [dst.predicted()], _options(mode=mode, mask="dst", blur=20), learns_mask=False)
    assert out.image.shape == dst.frame.shape and out.image.dtype == np.uint8
    assert out.mask.shape == dst.frame.shape[:2]
    untouched = out.mask == 0
    assert np.array_equal(out.image[untouched], dst.frame[untouched])  # pixel-exact outside the final mask
    outside = ~_dilated_hull(dst, 12)  # blur 20 on a ~240 px face feathers ~6 px beyond the hull
    assert np.array_equal(out.image[outside], dst.frame[outside])
    inside = out.mask == 255
    assert inside.sum() > 10000
    assert np.abs(out.image[inside].astype(int) - dst.frame[inside].astype(int)).mean() > 5  # the face did change


def test_hist_match_bw_greys_the_whole_frame(dst):
    out = merge_frame(dst.frame, [dst.predicted()], _options(mode="hist-match-bw", mask="dst"), learns_mask=False)
    b, g, r = (out.image[..., c].astype(int) for c in range(3))
    assert np.array_equal(b, g) and np.array_equal(g, r)  # grey everywhere, the face and the rest
    grey = cv2.cvtColor(dst.frame, cv2.COLOR_BGR2GRAY)
    untouched = out.mask == 0
    assert np.array_equal(out.image[..., 0][untouched], grey[untouched])
    inside = out.mask == 255
    assert np.abs(b[inside] - grey[inside].astype(int)).mean() > 5  # the face did change


@pytest.mark.parametrize("transfer", COLOUR_TRANSFERS.names())
def test_colour_transfers_in_overlay_and_seamless(dst, transfer):
    for mode in ("overlay", "seamless"):
        out = merge_frame(dst.frame, [dst.predicted()], _options(mode=mode, colour_transfer=transfer, mask="dst"),
                          learns_mask=False)
        assert out.image.shape == dst.frame.shape
        assert np.array_equal(out.image[out.mask == 0], dst.frame[out.mask == 0])


def test_raw_modes_are_editor_layers(dst):
    face = [dst.predicted()]
    rgb = merge_frame(dst.frame, face, _options(mode="raw-rgb", mask="dst"), False)
    predict = merge_frame(dst.frame, face, _options(mode="raw-predict", mask="dst"), False)
    mask = merge_frame(dst.frame, face, _options(mode="raw-mask", mask="dst"), False)
    for out in (rgb, predict, mask):
        assert out.image.shape == dst.frame.shape
    assert np.array_equal(rgb.image[rgb.mask == 0], dst.frame[rgb.mask == 0])
    assert (rgb.mask == 255).sum() > (mask.mask == 255).sum()  # the whole square vs. the face
    assert predict.image[predict.mask == 0].max() == 0  # on black
    grey = cv2.cvtColor(mask.image, cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(grey - mask.mask.astype(int)).max() <= 4  # the mask drawn white on black (± watermark)


def test_erode_changes_the_merged_area_monotonically(dst):
    areas = [(merge_frame(dst.frame, [dst.predicted()], _options(mode="overlay", mask="dst", erode=e), False).mask > 0)
             .sum() for e in (-60, -20, 0, 20, 60)]
    assert all(a > b for a, b in zip(areas, areas[1:])), areas


def test_face_scale_changes_the_pasted_area(dst):
    areas = [(merge_frame(dst.frame, [dst.predicted()], _options(mode="overlay", mask="dst", face_scale=s), False)
              .mask > 0).sum() for s in (-30, 0, 30)]
    assert areas[0] < areas[1] < areas[2]
    assert areas[2] / areas[1] == pytest.approx(1.3 ** 2, rel=0.1)


def test_frame_without_faces_passes_through_bit_identical(dst):
    out = merge_frame(dst.frame, [], _options(), learns_mask=True)
    assert np.array_equal(out.image, dst.frame) and out.mask.max() == 0


def test_merged_face_carries_the_watermark(dst):
    out = merge_frame(dst.frame, [dst.predicted()], _options(mask="dst"), learns_mask=False)
    assert provenance.watermark_score(provenance.block_scores(out.image)) >= provenance.THRESHOLD
    assert provenance.watermark_score(provenance.block_scores(dst.frame)) < provenance.THRESHOLD


def test_export_alpha_and_debug_panel(dst):
    out = merge_frame(dst.frame, [dst.predicted()], _options(mask="dst", export_alpha=True), False, debug=True)
    assert out.image.shape == (*dst.frame.shape[:2], 4)
    assert np.array_equal(out.image[..., 3], out.mask)
    assert out.debug is not None and out.debug.shape[1] == 5 * out.debug.shape[0]  # 5 tiles for one face
    assert "mode seamless" in out.info[0]


def test_mask_registry(dst):
    points = alignment.transform_points(dst.meta.source_landmarks, model_face_from_frame(dst.meta, "full", 64))
    hull = masks.hull_mask(points, 64, 64)
    smaller = masks.erode(hull, 80, 64)  # stands in for a learned mask inside the hull
    inputs = MaskInputs(64, points, smaller, None)
    assert resolve_mask_name("auto", True) == "learned" and resolve_mask_name("auto", False) == "dst"
    assert 0 < smaller.sum() < hull.sum()
    np.testing.assert_allclose(build_mask("dst", inputs), hull)
    np.testing.assert_allclose(build_mask("learned*dst", inputs), smaller * hull)
    with pytest.raises(OptionError, match="learns no mask"):
        build_mask("learned-dst", inputs)
    with pytest.raises(OptionError, match="segmenter"):
        build_mask("seg-prd", inputs)
    with pytest.raises(OptionError, match=r"did you mean 'learned\*dst'"):
        resolve_mask_name("learnd*dst", True)


def test_the_learned_masks_a_merge_needs_follow_the_mask_names():
    assert learned_masks_needed(["auto"], True) == (True, False)
    assert learned_masks_needed(["auto"], False) == (False, False)
    assert learned_masks_needed(["dst", "seg-prd*seg-dst"], True) == (False, False)
    assert learned_masks_needed(["learned-dst*dst"], True) == (False, True)
    assert learned_masks_needed(["dst", "learned*learned-dst*dst"], True) == (True, True)
