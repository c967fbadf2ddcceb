"""The live session on real frames: the face swapped and watermarked, the rest of the frame untouched, options
checked as the merge checks them, tracking between detections, smoothing that steadies without lagging."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facelab import provenance
from facelab.errors import InputError, OptionError
from facelab.geometry.alignment import face_from_landmarks
from facelab.geometry.blend import square_box
from facelab.geometry.masks import hull_mask
from facelab.live.session import STAGES, LiveSwap
from facelab.live.smoothing import jitter, one_euro, rigid_speed
from facelab.live.tracking import FaceTracker
from facelab.merge.options import MERGE_OPTIONS
from facelab.options import defaults


@pytest.fixture(scope="module")
def live(swapper) -> LiveSwap:
    return LiveSwap(swapper, {"mode": "overlay", "mask": "dst"})


def test_the_face_is_swapped_and_watermarked_and_nothing_else_changes(live, dst_frames):
    live.reset()
    for frame in dst_frames[:3]:
        prepared = live.prepare(frame)
        out = live.blend(prepared)
        assert out.faces == 1 and out.frame.shape == frame.shape and out.frame.dtype == np.uint8
        assert set(out.ms) == set(STAGES) and out.ms["total"] >= out.ms["swap"] > 0
        face = prepared.faces[0]
        x0, y0, x1, y1 = square_box(face.face_from_frame, face.predicted.shape[0], frame.shape[1], frame.shape[0])
        outside = np.ones(frame.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(out.frame[outside], frame[outside])
        inside = hull_mask(face.meta.source_landmarks, *frame.shape[:2]) > 0.5
        inside = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        diff = np.abs(out.frame.astype(int) - frame.astype(int)).mean(axis=2)
        assert diff[inside].mean() > 10  # another (untrained) face, not the dst's
        assert provenance.watermark_score(provenance.block_scores(out.frame)) >= provenance.THRESHOLD
    assert provenance.watermark_score(provenance.block_scores(dst_frames[0])) < provenance.THRESHOLD


def test_a_frame_without_a_face_passes_unchanged(live):
    live.reset()
    blank = np.full((360, 640, 3), 128, np.uint8)
    out = live.process(blank)
    assert out.faces == 0 and np.array_equal(out.frame, blank)


def test_set_options_checks_values_like_the_merge_and_returns_them_all(swapper):
    session = LiveSwap(swapper)
    assert session.options == defaults(MERGE_OPTIONS)
    current = session.set_options({"mode": "overlay", "erode": 20, "blur": "30", "colour_transfer": "lct"})
    assert set(current) == {o.name for o in MERGE_OPTIONS}
    assert (current["mode"], current["erode"], current["blur"], current["colour_transfer"]) == \
        ("overlay", 20, 30, "lct")
    for bad in ({"erode": 401}, {"mode": "sideways"}, {"blur": float("nan")}, {"blur": True}, {"colour": "rct"},
                {"super_resolution": True}, {"export_alpha": True}, {"mask": "seg-dst"}, "mode=overlay"):
        with pytest.raises(OptionError):
            session.set_options(bad)
        assert session.options == current  # a refused change changes nothing
    assert session.set_options({"erode": None})["erode"] == 0  # None: back to the default


def test_a_learned_mask_needs_a_model_that_learns_one(swapper):
    no_mask = type("NoMask", (), {"name": "x", "resolution": 64, "face_type": "full", "learn_mask": False,
                                  "predict": swapper.predict})()
    with pytest.raises(OptionError, match="learns a mask"):
        LiveSwap(no_mask, {"mask": "learned"})
    assert LiveSwap(no_mask, {"mask": "auto"}).set_options({})["mask"] == "auto"  # auto → dst for it


def test_frames_that_are_not_bgr_images_are_refused(live):
    for bad in (np.zeros((360, 640), np.uint8), np.zeros((360, 640, 3), np.float32), np.zeros((8, 8, 3), np.uint8),
                [[0, 0, 0]]):
        with pytest.raises(InputError):
            live.process(bad)


def test_the_tracker_detects_on_a_schedule_and_follows_the_face_between(dst_frames):
    tracker = FaceTracker(detect_every=5)
    calls = []
    detect = tracker.detector.detect
    tracker.detector.detect = lambda frame: calls.append(1) or detect(frame)
    for frame in dst_frames[:12]:
        tracks, times = tracker.update(frame)
        assert len(tracks) == 1 and tracks[0].index == 0  # one face, followed as the same face all along
    assert len(calls) == math.ceil(12 / 5)
    tracker.reset()
    tracker.update(dst_frames[0])
    assert len(calls) == math.ceil(12 / 5) + 1  # a new stream starts with a detection


def test_smoothing_steadies_the_face_without_leaving_it(dst_frames):
    tracker = FaceTracker(detect_every=8)
    raw, steady, state = [], [], None
    for frame in dst_frames:
        (track,), _ = tracker.update(frame)
        smoothed, state = one_euro(track.landmarks, state, 0.5)
        raw.append(face_from_landmarks(track.landmarks, "full", 64))
        steady.append(face_from_landmarks(smoothed, "full", 64))
    assert jitter(steady, 64) < 0.8 * jitter(raw, 64)
    corners = [np.abs(np.linalg.inv(np.vstack([a, [0, 0, 1]]))[:2, 2] - np.linalg.inv(np.vstack([b, [0, 0, 1]]))[:2, 2])
               for a, b in zip(steady, raw)]
    assert np.mean(corners) < 2.0  # px: the steadied square stays on the face


def test_one_euro_holds_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (68, 2))
    noisy = [base + rng.normal(0, 1.0, base.shape) for _ in range(80)]

    def left(smoothing: float) -> float:
        """The noise (1 px) left on a still face."""
        out, state = [], None
        for sample in noisy:
            value, state = one_euro(sample, state, smoothing)
            out.append(value)
        return float(np.std(np.array(out[20:]) - base))

    strong, medium, off = left(1.0), left(0.5), left(0.0)
    assert strong < 0.45 and strong < medium < 0.65 and off == pytest.approx(1.0, abs=0.05)
    moving, state = None, None
    for t in range(60):
        moving, state = one_euro(base + [3.0 * t, 0.0], state, 0.5)
    assert np.abs(moving - (base + [3.0 * 59, 0.0])).max() < 6.0  # 3 px a frame followed within 2 frames
    assert np.array_equal(one_euro(base, state, 0.0)[0], base)  # 0: off


def test_jitter_counts_shake_not_steady_motion():
    steady = [np.array([[1.0, 0.0, -2.0 * t], [0.0, 1.0, -t]]) for t in range(10)]
    assert jitter(steady, 64) == pytest.approx(0.0, abs=1e-9)
    shaky = [m + np.array([[0, 0, (-1) ** t * 0.64], [0, 0, 0]]) for t, m in enumerate(steady)]
    assert jitter(shaky, 64) == pytest.approx(100 * 4 * 0.64 / 64)  # |x+1 - 2x + x-1| = 4 × 0.64 px of 64
    assert math.isnan(jitter(steady[:2], 64))


def test_rigid_speed_measures_shift_turn_and_growth():
    rng = np.random.default_rng(1)
    points = rng.uniform(-50, 50, (68, 2))
    assert rigid_speed(np.tile([3.0, 4.0], (68, 1)), points) == pytest.approx(5.0)
    centred = points - points.mean(0)
    rms = np.sqrt((centred ** 2).sum(1).mean())
    turn = 0.01 * np.stack([-centred[:, 1], centred[:, 0]], 1)  # a small rotation about the centre
    assert rigid_speed(turn, points) == pytest.approx(0.01 * rms)
    assert rigid_speed(0.02 * centred, points) == pytest.approx(0.02 * rms)
    assert rigid_speed(rng.normal(0, 1, (68, 2)), points) < 0.5  # each point's own noise mostly averages out
