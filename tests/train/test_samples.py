"""Training samples: masks, augmentation maths, the face cache and batches, on real extracted faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelab.errors import InputError
from facelab.geometry.alignment import transform_points
from facelab.io.faceimage import list_faces, read_face, read_meta
from facelab.train import samples
from facelab.train.samples import FaceCache, FeedSettings, SampleFeeder


def _square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_face_mask_fills_the_landmark_hull_and_applies_polygons():
    ring = np.array([[32 + 20 * np.cos(a), 32 + 20 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 68)])
    mask = samples.face_mask(ring, 64)
    assert mask.dtype == np.uint8 and mask.shape == (64, 64)
    assert mask[32, 32] == 255 and mask[2, 2] == 0 and mask[32, 60] == 0
    area = (mask > 127).mean() * 64 * 64
    assert abs(area - np.pi * 20**2) < 0.1 * np.pi * 20**2  # geometry.masks.hull_mask grows ~0.5 px
    edited = samples.face_mask(ring, 64, include=[_square(54, 54, 63, 63)], exclude=[_square(28, 28, 36, 36)])
    assert edited[58, 58] == 255 and edited[32, 32] == 0 and edited[20, 32] == 255


def test_random_warp_is_smooth_bounded_and_keeps_the_border():
    rng = np.random.default_rng(0)
    map_x, map_y = samples.random_warp_maps(rng, 64)
    grid_y, grid_x = np.mgrid[0:64, 0:64].astype(np.float32)
    dx, dy = map_x - grid_x, map_y - grid_y
    assert map_x.dtype == np.float32 and map_x.shape == (64, 64)
    limit = samples.WARP_AMOUNT * 63 / samples.WARP_CELLS + 1e-4
    assert 0.5 < np.abs(dx).max() <= limit and np.abs(dy).max() <= limit
    assert np.abs(dx[0, 0]) < 1e-4 and np.abs(dy[-1, -1]) < 1e-4
    assert np.abs(np.diff(dx, axis=1)).max() <= 2 * samples.WARP_AMOUNT + 1e-4  # smooth: neighbours move together


def test_random_affine_flip_mirrors_the_same_transform():
    plain = samples.random_affine(np.random.default_rng(3), 64, flip=False)
    flipped = samples.random_affine(np.random.default_rng(3), 64, flip=True)
    pts = np.array([[10.0, 20.0], [50.0, 5.0]])
    a, b = transform_points(pts, plain), transform_points(pts, flipped)
    np.testing.assert_allclose(b[:, 0], 63 - a[:, 0], atol=1e-9)
    np.testing.assert_allclose(b[:, 1], a[:, 1], atol=1e-9)
    angle = np.degrees(np.arctan2(plain[1, 0], plain[0, 0]))
    scale = np.hypot(plain[0, 0], plain[1, 0])
    assert abs(angle) <= samples.ROTATION_DEG and abs(scale - 1) <= samples.SCALE + 1e-9
    bigger = samples.random_affine(np.random.default_rng(3), 64, flip=False, scale_mod=30)
    assert np.hypot(bigger[0, 0], bigger[1, 0]) == pytest.approx(scale * 1.3)


def test_pick_src_by_yaw_matches_the_dst_pose():
    src_yaws = np.random.default_rng(1).permutation(np.linspace(-40, 40, 100))
    picks = samples.pick_src_by_yaw(src_yaws, np.array([-38.0, 0.0, 25.0] * 20), np.random.default_rng(2))
    got = src_yaws[picks].reshape(20, 3)
    assert np.all(np.abs(got - [-38.0, 0.0, 25.0]) <= 6.0)


def test_face_cache_reads_every_face_once_at_model_size(src_faceset):
    cache = FaceCache.build(src_faceset, "full", 64)
    try:
        paths = list_faces(src_faceset)
        assert len(cache) == len(paths) and cache.faces.shape == (len(paths), 64, 64, 3)
        image, meta = read_face(paths[0])
        assert np.abs(cache.faces[0].astype(int).mean(axis=(0, 1)) - image.mean(axis=(0, 1))).max() < 3
        assert cache.yaws[0] == pytest.approx(meta.yaw)
        covered = (cache.masks > 127).mean(axis=(1, 2))
        assert np.all((covered > 0.3) & (covered < 0.9)), covered  # a full-face crop is mostly face
        reopened = FaceCache(cache.spec)  # how a worker process sees it
        np.testing.assert_array_equal(reopened.faces[3], cache.faces[3])
        np.testing.assert_array_equal(reopened.yaws, cache.yaws)
        # No model of these settings weighs eyes and mouth: their masks take neither memory nor disk.
        assert cache.em_masks is None and reopened.em_masks is None
        assert not (Path(cache.spec.folder) / "em_masks.u8").exists()
        with pytest.raises(ValueError, match="eyes_mouth"):
            samples.make_batch(cache, cache, FeedSettings(batch_size=1, eyes_mouth=True), np.random.default_rng(0))
    finally:
        cache.close()
    assert not (src_faceset.parent / cache.spec.folder).exists()


def test_face_cache_recrops_full_faces_for_a_half_face_model(src_faceset):
    full, half = FaceCache.build(src_faceset, "full", 64), FaceCache.build(src_faceset, "half", 64)
    try:
        # the half face is a zoom on the inner face: its hull mask covers far more of the square
        assert (half.masks > 127).mean() > (full.masks > 127).mean() + 0.15
        meta = read_meta(list_faces(src_faceset)[0])
        assert meta.face_type == "full"
    finally:
        full.close()
        half.close()


def test_face_cache_refuses_an_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no aligned faces"):
        FaceCache.build(tmp_path, "full", 64)


def test_batches_have_warped_inputs_and_unwarped_targets(caches):
    batch = samples.make_batch(*caches, FeedSettings(batch_size=4), np.random.default_rng(0))
    for side in ("src", "dst"):
        assert batch[side].shape == batch[f"{side}_target"].shape == (4, 64, 64, 3)
        assert batch[f"{side}_mask"].shape == (4, 64, 64) and batch[side].dtype == np.uint8
        diff = np.abs(batch[side].astype(int) - batch[f"{side}_target"]).mean()
        assert 1 < diff < 40  # warped, yet the same face
        inside = batch[f"{side}_target"][batch[f"{side}_mask"] > 127].mean()
        assert inside > 40  # the mask sits on the (lit) face, not on black padding


def test_sort_by_yaw_feeds_src_faces_posed_like_dst(caches):
    src, dst = caches
    rng = np.random.default_rng(5)
    dst_idx = rng.integers(len(dst), size=200)
    picked = samples.pick_src_by_yaw(src.yaws, dst.yaws[dst_idx], rng)
    matched = np.abs(src.yaws[picked] - dst.yaws[dst_idx]).mean()
    random = np.abs(src.yaws[rng.integers(len(src), size=200)] - dst.yaws[dst_idx]).mean()
    assert matched <= random


def test_in_process_feeder_resumes_its_random_stream(caches):
    feeder = SampleFeeder(*caches, FeedSettings(batch_size=2), workers=0, seed=7)
    feeder.next()
    state = feeder.rng_state
    expected = feeder.next()
    other = SampleFeeder(*caches, FeedSettings(batch_size=2), workers=0, seed=99)
    other.rng_state = state
    got = other.next()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_worker_processes_feed_batches_and_stop(caches):
    feeder = SampleFeeder(*caches, FeedSettings(batch_size=2, sort_by_yaw=True), workers=2, seed=1)
    try:
        batches = [feeder.next() for _ in range(3)]
        assert all(b["src"].shape == (2, 64, 64, 3) for b in batches)
        procs = list(feeder._procs)
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
    finally:
        feeder.close()
    assert not any(p.is_alive() for p in procs)


def test_caches_of_killed_trainers_are_cleaned_up(src_faceset):
    import tempfile
    from pathlib import Path

    orphan = Path(tempfile.mkdtemp(prefix="facelab-faces-999999999-"))  # no such process
    (orphan / "faces.u8").write_bytes(b"\0" * 10)
    cache = FaceCache.build(src_faceset, "full", 64)
    try:
        assert not orphan.exists() and Path(cache.spec.folder).is_dir()
    finally:
        cache.close()


# -- SAEHD's sample options ---------------------------------------------------------------------------------


def _inside_hulls(landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(strictly inside an eye or the mouth hull, distance in px to the nearest of those hulls) per pixel."""
    import cv2

    inside = np.zeros((size, size), bool)
    dist = np.full((size, size), np.inf)
    ys, xs = np.mgrid[0:size, 0:size]
    centres = np.stack([xs + 0.5, ys + 0.5], -1).reshape(-1, 2)  # pixel centres, (x, y) corner convention
    for group in (slice(36, 42), slice(42, 48), slice(48, 60)):
        hull = cv2.convexHull(landmarks[group].astype(np.float32))
        d = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in centres]).reshape(size, size)
        inside |= d > 0.5
        dist = np.minimum(dist, np.maximum(-d, 0))
    return inside, dist


def test_eyes_mouth_mask_covers_exactly_the_grown_eye_and_mouth_hulls(src_faceset):
    size = 128
    _, meta = read_face(list_faces(src_faceset)[0])
    landmarks = np.asarray(meta.landmarks, np.float64) * size / meta.image_size
    mask = samples.eyes_mouth_mask(landmarks, size)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    inside, dist = _inside_hulls(landmarks, size)
    grow = max(3, int(size * samples.EYES_MOUTH_GROW) | 1) / 2
    assert (mask[inside] == 255).all()  # every eye and mouth pixel weighs
    assert (mask[dist > grow + 1] == 0).all()  # nothing beyond the grown hulls: not the nose, brows or cheeks
    assert 0.01 < (mask > 0).mean() < 0.15


def test_face_cache_keeps_eye_and_mouth_masks_inside_the_face(caches):
    src, _ = caches
    em, face = src.em_masks > 127, src.masks > 127
    assert em.any(axis=(1, 2)).all()
    assert (em & ~face).sum() < 0.02 * em.sum()


def test_uniform_yaw_draws_every_yaw_bin_about_equally():
    yaws = np.concatenate([np.zeros(900), np.linspace(10.5, 40, 100)])  # mostly frontal, few side views
    idx = samples.uniform_yaw_indices(yaws, 4000, np.random.default_rng(0), bins=4)
    counts = np.bincount(np.minimum((yaws[idx] / 40 * 4).astype(int), 3), minlength=4)
    assert counts.min() > 0.8 * counts.max(), counts  # bins 0-3 equally often, though bin 0 holds 90 % of faces
    assert (yaws[idx] > 10).mean() > 0.6


def test_random_hsv_recolours_but_keeps_the_picture(caches):
    face = np.ascontiguousarray(caches[0].faces[0])
    assert samples.random_hsv(face, np.random.default_rng(0), 0.0) is face
    shifted = [samples.random_hsv(face, np.random.default_rng(s), 0.3) for s in range(4)]
    gray = lambda im: im.astype(float).mean(-1)
    for out in shifted:
        assert out.shape == face.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - face).mean() > 2  # colours moved
        assert np.corrcoef(gray(out).ravel(), gray(face).ravel())[0, 1] > 0.8  # same face, same place


def test_colour_transfer_moves_src_colours_toward_dst(caches):
    src, dst = caches
    face, reference, mask = src.faces[0], dst.faces[0], src.masks[0]
    out = samples.transfer_colours(face, reference, mask, "rct")
    inside = mask > 127
    before = np.abs(face[inside].mean(0) - reference[inside].mean(0)).sum()
    after = np.abs(out[inside].mean(0).astype(float) - reference[inside].mean(0)).sum()
    assert after < 0.5 * before
    assert samples.transfer_colours(face, reference, mask, "none") is face


def test_saehd_batches_carry_eye_masks_and_honour_warp_and_flip(caches):
    settings = FeedSettings(batch_size=3, random_flip=False, src_flip=False, random_warp=False, eyes_mouth=True,
                            hsv_power=0.1, colour_transfer="lct", uniform_yaw=True)
    batch = samples.make_batch(*caches, settings, np.random.default_rng(3))
    for side in ("src", "dst"):
        np.testing.assert_array_equal(batch[side], batch[f"{side}_target"])  # no random warp
        em, mask = batch[f"{side}_em_mask"], batch[f"{side}_mask"]
        assert em.shape == mask.shape == (3, 64, 64) and em.dtype == np.uint8
        assert ((em > 127) & (mask < 128)).sum() < 0.05 * (em > 127).sum()  # moved with the face
    plain = samples.make_batch(*caches, FeedSettings(batch_size=3), np.random.default_rng(3))
    assert "src_em_mask" not in plain


# -- masked training from applied XSeg masks ----------------------------------------------------------------

WITHOUT_XSEG = 3  # faces of the faceset left without an applied mask (the fallback: hull + polygons)


@pytest.fixture(scope="module")
def xseg_faceset(src_faceset, tmp_path_factory):
    """A copy of the src faceset with a real (briefly trained, so blotchy, nothing like a hull) XSeg applied by
    `facelab xseg apply`'s own function, then taken out of the last WITHOUT_XSEG faces; the first face also
    carries mask polygons (the XSeg mask wins over them)."""
    import shutil

    from facelab.io.faceimage import write_meta
    from facelab.xseg.apply import apply_folder
    from facelab.xseg.segmenter import Segmenter
    from facelab.xseg.stored import KEY
    from facelab.xseg.trainer import train_xseg

    folder = tmp_path_factory.mktemp("xseg_faces") / "aligned"
    shutil.copytree(src_faceset, folder)
    model = tmp_path_factory.mktemp("xseg_model") / "xseg"
    train_xseg(model, [folder], {"resolution": 64, "channels": 4, "batch_size": 2}, max_iterations=2, seed=0)
    assert apply_folder(folder, Segmenter.load(model)).done == len(list_faces(folder))
    paths = list_faces(folder)
    meta = read_meta(paths[0])
    meta.mask_polygons = {"include": [], "exclude": [_square(0, 0, 60, 60)]}
    write_meta(paths[0], meta)
    for path in paths[-WITHOUT_XSEG:]:
        meta = read_meta(path)
        del meta.extra[KEY]
        write_meta(path, meta)
    return folder


def _hull_and_polygons(meta, size: int) -> np.ndarray:
    model_from_file = np.array([[size / meta.image_size, 0, 0], [0, size / meta.image_size, 0]])
    polys = meta.mask_polygons or {}
    return samples.face_mask(transform_points(meta.landmarks, model_from_file), size,
                             [transform_points(p, model_from_file) for p in polys.get("include", [])],
                             [transform_points(p, model_from_file) for p in polys.get("exclude", [])])


def test_applied_xseg_masks_are_the_training_targets_else_hull_and_polygons(xseg_faceset, monkeypatch, caplog):
    import cv2
    import torch

    from facelab.train.loop import to_tensors
    from facelab.xseg.stored import stored_mask

    paths = list_faces(xseg_faceset)
    with caplog.at_level("INFO", logger="facelab.train.samples"):
        cache = FaceCache.build(xseg_faceset, "full", 64)
    try:
        n = len(paths)
        assert cache.xseg_masks == n - WITHOUT_XSEG
        assert f"masks: XSeg on {n - WITHOUT_XSEG} of {n} faces, hull+polygons on {WITHOUT_XSEG}" in caplog.text
        expected = []
        for i, path in enumerate(paths):
            meta = read_meta(path)
            stored = stored_mask(meta)
            hull = _hull_and_polygons(meta, 64)
            if i < n - WITHOUT_XSEG:
                want = np.rint(cv2.resize(stored, (64, 64), interpolation=cv2.INTER_AREA) * 255).astype(np.uint8)
                assert np.abs(want.astype(int) - hull).mean() > 20  # a target the hull could not pass for
            else:
                assert stored is None
                want = hull
            np.testing.assert_array_equal(cache.masks[i], want)
            expected.append(want)
        # What SAE's learned mask and SAEHD's masked loss train against: the batch's mask tensor. The random
        # affine is made the identity so the target is the cache's mask pixel for pixel.
        monkeypatch.setattr(samples, "random_affine", lambda rng, size, flip, scale_mod=0.0: np.eye(2, 3))
        settings = FeedSettings(batch_size=12, random_flip=False, random_warp=False)
        batch = samples.make_batch(cache, cache, settings, np.random.default_rng(1))
        tensors = to_tensors(batch, torch.device("cpu"), torch.contiguous_format)
        for side in ("src", "dst"):
            for k in range(settings.batch_size):
                i = next(j for j in range(n) if np.array_equal(cache.faces[j], batch[f"{side}_target"][k]))
                torch.testing.assert_close(tensors[f"{side}_mask"][k, 0],
                                           torch.from_numpy(expected[i]).float() / 255, rtol=0, atol=0)
    finally:
        cache.close()


def test_xseg_masks_follow_the_face_into_another_face_type(xseg_faceset):
    import cv2

    from facelab.geometry.alignment import face_from_landmarks
    from facelab.types import FaceType
    from facelab.xseg.stored import stored_mask

    path = list_faces(xseg_faceset)[1]
    image, meta = read_face(path)
    _, mask, _, from_xseg = samples.crop_to_model(image, meta, "half", 64)
    model_from_file = face_from_landmarks(meta.landmarks, FaceType.HALF, 64)
    want = cv2.warpAffine(stored_mask(meta), model_from_file, (64, 64), flags=cv2.INTER_LINEAR)
    assert from_xseg
    np.testing.assert_array_equal(mask, np.rint(np.clip(want, 0, 1) * 255).astype(np.uint8))


def test_a_faceset_without_xseg_masks_trains_on_hull_and_polygons(src_faceset, caplog):
    with caplog.at_level("INFO", logger="facelab.train.samples"):
        cache = FaceCache.build(src_faceset, "full", 64)
    try:
        paths = list_faces(src_faceset)
        assert cache.xseg_masks == 0
        assert f"hull+polygons on all {len(paths)} faces (no XSeg mask applied)" in caplog.text
        for i in (0, len(paths) - 1):
            np.testing.assert_array_equal(cache.masks[i], _hull_and_polygons(read_meta(paths[i]), 64))
    finally:
        cache.close()
