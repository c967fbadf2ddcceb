"""XSeg's sample maths and targets on real demo faces: polygons become the editor's exact mask, pasted occluders
are "not face", geometric augmentations move image and mask together, stored masks are read safely."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.train.samples import face_mask
from facelab.xseg import augment
from facelab.xseg.data import exclude_alpha, find_faces, is_labelled, load_face, polygon_target
from facelab.xseg.stored import KEY, encode_mask, stored_mask


def _label(path, include, exclude):
    meta = read_meta(path)
    meta.mask_polygons = {"include": include, "exclude": exclude}
    write_meta(path, meta)
    return read_meta(path)


def test_polygons_are_the_training_target(workspace):
    """Target = the editor's mask (hull + include − exclude, same rasteriser); only labelled faces are used."""
    faces = list_faces(workspace / "data_src/aligned")
    s = read_meta(faces[0]).image_size
    include = [[[0.0, 0.0], [s * 0.3, 0.0], [s * 0.3, s * 0.2], [0.0, s * 0.2]]]  # a corner outside the hull
    exclude = [[[s * 0.4, s * 0.4], [s * 0.6, s * 0.4], [s * 0.6, s * 0.6], [s * 0.4, s * 0.6]]]  # mid-face
    meta = _label(faces[0], include, exclude)
    target = polygon_target(meta)
    assert np.array_equal(target, face_mask(meta.landmarks, s, include, exclude))
    assert target[int(s * 0.1), int(s * 0.15)] == 255 and target[s // 2, s // 2] == 0
    hull = hull_mask(meta.landmarks, s, s)
    assert hull[int(s * 0.1), int(s * 0.15)] == 0 and hull[s // 2, s // 2] == 1  # the polygons changed it
    alpha = exclude_alpha(meta)
    assert alpha[s // 2, s // 2] == 1 and alpha[int(s * 0.1), int(s * 0.15)] == 0

    sources, generic = find_faces([workspace / "data_src/aligned"], None)
    assert not generic and [f.path for f in sources] == [faces[0]] and sources[0].has_exclude
    image, loaded, _ = load_face(sources[0], s)
    assert np.array_equal(loaded, target.astype(np.float32) / 255)
    assert np.array_equal(image, read_face(faces[0])[0])
    everyone, generic = find_faces([workspace / "data_src/aligned"], True)
    assert generic and len(everyone) == len(faces) and not any(f.labelled for f in everyone)
    first, _, meta = load_face(everyone[1], 64)
    assert first.shape == (64, 64, 3)
    assert not is_labelled(meta)


def test_pasted_occluder_is_not_face(rng=np.random.default_rng(3)):
    image = np.full((64, 64, 3), 100, np.uint8)
    mask = np.ones((64, 64), np.float32)
    occluder = augment.Occluder(np.full((10, 20, 3), 7, np.uint8), np.ones((10, 20), np.float32))
    out, target = augment.paste(image, mask, occluder, 50, 30)  # hangs over the right edge
    assert (out[30:40, 50:64] == 7).all() and (target[30:40, 50:64] == 0).all()
    assert (out[:30] == 100).all() and (target[:30] == 1).all() and target.sum() == 64 * 64 - 10 * 14
    synthetic = augment.synthetic_occluder(64, rng)
    assert synthetic.image.shape[:2] == synthetic.alpha.shape and 0 < synthetic.alpha.mean() < 1


def test_geometry_moves_image_and_mask_together():
    rng = np.random.default_rng(1)
    image = np.zeros((96, 96, 3), np.uint8)
    image[30:50, 40:70] = 255
    mask = (image[..., 0] > 0).astype(np.float32)
    for step in (augment.random_affine, augment.random_warp):
        moved, moved_mask = step(image, mask, rng)
        bright = moved[..., 0].astype(np.float32) / 255
        assert abs(bright.sum() - moved_mask.sum()) < 0.02 * mask.sum()
        assert np.abs(bright - moved_mask).mean() < 0.01
    flipped, flipped_mask = augment.random_flip(image, mask, np.random.default_rng(0))
    assert np.array_equal(flipped[..., 0] > 0, flipped_mask > 0)


def test_colour_changes_leave_geometry(workspace):
    face = read_face(list_faces(workspace / "data_dst/aligned")[0])[0]
    rng = np.random.default_rng(0)
    for out in (augment.random_hsv(face, rng), augment.random_blur(face, rng, chance=1.0),
                augment.random_noise(face, rng, chance=1.0)):
        assert out.shape == face.shape and out.dtype == np.uint8 and not np.array_equal(out, face)
        assert np.corrcoef(out.astype(float).ravel(), face.astype(float).ravel())[0, 1] > 0.8


def test_stored_mask_round_trip_and_hostile_values(workspace):
    meta = read_meta(list_faces(workspace / "data_dst/aligned")[0])
    s = meta.image_size
    mask = hull_mask(meta.landmarks, s, s)
    meta.extra[KEY] = encode_mask(mask, 7)
    back = stored_mask(meta)
    assert back.shape == (s, s) and np.abs(back - mask).max() <= 1 / 255 + 1e-6
    ok, huge = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    claims_huge = bytearray(huge.tobytes())
    claims_huge[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR says 60000 × 60000
    for bad in ({"png": "not base64!"}, {"png": 5}, "text", {"png": base64.b64encode(b"GIF89a").decode()},
                {"png": base64.b64encode(bytes(claims_huge)).decode()}):
        meta.extra[KEY] = bad
        assert stored_mask(meta) is None
