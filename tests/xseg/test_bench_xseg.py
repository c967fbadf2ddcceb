"""The accuracy benchmark's test set on real demo faces: each occluder is pasted where its alpha says, the ground
truth is exactly the hull minus it, and polygons traced from it give the editor's mask of that truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab.bench import xseg_occluders
from facelab.bench.xseg_accuracy import exclude_polygons, occlude
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face
from facelab.xseg.data import polygon_target


@pytest.mark.parametrize("kind", xseg_occluders.KINDS)
def test_occluded_face_and_its_ground_truth(demo_workspace, kind):
    faces = list_faces(demo_workspace / "data_dst/aligned")
    image, meta = read_face(faces[0])
    other, other_meta = read_face(list_faces(demo_workspace / "data_src/aligned")[0])
    skin = xseg_occluders.skin_patch(other, other_meta.landmarks)
    rng = np.random.default_rng(5)
    occluded, truth, covered = occlude(image, meta.landmarks, kind, rng, skin, other)
    s = meta.image_size
    hull = hull_mask(meta.landmarks, s, s) > 0.5
    assert np.array_equal(truth, hull & ~covered)
    assert (covered & hull).sum() > 0.03 * hull.sum()  # it really covers part of the face
    changed = (occluded != image).any(axis=2)
    assert not changed[~cv2.dilate(covered.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)].any()
    assert changed[covered].mean() > 0.8  # where it is, it shows (not the face through it)

    meta.mask_polygons = {"exclude": exclude_polygons(covered)}
    labelled = polygon_target(meta) > 127
    iou = (labelled & truth).sum() / (labelled | truth).sum()
    assert iou > 0.97, iou  # traced to within a pixel, as a careful user draws


def test_hand_has_fingers():
    alpha = xseg_occluders.hand_alpha(128, np.random.default_rng(0)) > 0.5
    contours, _ = cv2.findContours(alpha.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    solidity = cv2.contourArea(outline) / cv2.contourArea(cv2.convexHull(outline))
    assert 0.1 < alpha.mean() < 0.6 and solidity < 0.85  # gaps between the fingers: not a blob
    with pytest.raises(ValueError, match="unknown occluder kind"):
        xseg_occluders.real_looking_occluder("glove", 64, np.random.default_rng(0), alpha, alpha)
