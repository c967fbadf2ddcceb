"""The XSeg merge masks: `seg-dst` from the applied metadata lands where the face is in the work square, and
`facelab merge --mask seg-dst` runs on a real workspace with the trained XSeg and differs from `--mask dst`."""

from __future__ import annotations

import shutil
from dataclasses import replace

import cv2
import numpy as np

from facelab.geometry import alignment
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_meta
from facelab.merge.masks import MaskInputs, build_mask
from facelab.merge.merger import PredictedFace, model_face_from_frame, segment_dst, work_square
from facelab.merge.runner import read_frame
from facelab.xseg.segmenter import Segmenter
from facelab.xseg.stored import KEY, encode_mask


def test_seg_dst_from_metadata_is_warped_into_the_work_square(demo_workspace):
    meta = read_meta(list_faces(demo_workspace / "data_dst/aligned")[0])
    s = meta.image_size
    meta.extra[KEY] = encode_mask(hull_mask(meta.landmarks, s, s), 1)
    work = 200
    face_from_frame = model_face_from_frame(meta, "whole-face", work)  # another face type and size than the file's
    landmarks = alignment.transform_points(meta.source_landmarks, face_from_frame)
    inputs = MaskInputs(work, landmarks, None, None, dst_meta=meta, face_from_frame=face_from_frame)
    mask = build_mask("seg-dst", inputs)
    expected = hull_mask(landmarks, work, work)
    iou = ((mask > 0.5) & (expected > 0.5)).sum() / ((mask > 0.5) | (expected > 0.5)).sum()
    assert mask.shape == (work, work) and iou > 0.97
    product = build_mask("seg-dst*dst", inputs)
    assert np.allclose(product, mask * expected)


def test_seg_dst_segmented_a_batch_at_a_time_is_the_mask_of_one_face_at_a_time(demo_workspace, tiny_xseg):
    segmenter = Segmenter.load(tiny_xseg)
    frames, faces = [], []
    for path in list_faces(demo_workspace / "data_dst/aligned")[:6]:
        meta = read_meta(path)
        frames.append(read_frame(demo_workspace / "data_dst" / meta.source_filename))
        faces.append([PredictedFace(meta, model_face_from_frame(meta, "full", 64), np.zeros((64, 64, 3), np.float32))])
    applied = faces[-1][0].meta
    applied.extra[KEY] = encode_mask(np.ones((applied.image_size,) * 2, np.float32), 1)
    batched = segment_dst(frames, faces, segmenter)
    assert batched[-1][0].seg_dst is None  # an applied mask is read from the metadata instead
    for frame, [face] in zip(frames[:-1], batched[:-1]):
        size, face_from_frame, dst_face = work_square(frame, face)
        landmarks = alignment.transform_points(face.meta.source_landmarks, face_from_frame)
        one = MaskInputs(size, landmarks, None, None, dst_face.astype(np.float32) / 255, None, face.meta,
                         face_from_frame, segmenter)
        alone = build_mask("seg-dst", one)
        assert face.seg_dst.shape == alone.shape == (size, size) and size > 64
        assert np.abs(build_mask("seg-dst", replace(one, seg_dst=face.seg_dst)) - alone).max() < 1e-4
        assert 0.05 < (alone > 0.5).mean() < 0.95  # a real mask, not all one value


def test_merge_with_seg_dst_on_a_real_workspace(workspace, tiny_xseg, run_cli):
    masks = workspace / "data_dst/merged_mask"
    no_xseg = run_cli("merge", "-w", str(workspace), "--mask", "seg-prd", "--overwrite", "--yes")
    assert no_xseg.code == 2 and "needs a trained XSeg" in no_xseg.err

    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    hull = run_cli("merge", "-w", str(workspace), "--mask", "dst", "--overwrite", "--yes")
    assert hull.code == 0, hull.err
    by_hull = {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in masks.iterdir()}
    seg = run_cli("merge", "-w", str(workspace), "--mask", "seg-dst", "--overwrite", "--yes")
    assert seg.code == 0, seg.err
    assert "XSeg segmenter" in seg.out
    by_seg = {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in masks.iterdir()}
    assert by_seg.keys() == by_hull.keys() and len(by_seg) >= 10
    changed = [n for n in by_seg if not np.array_equal(by_seg[n], by_hull[n])]
    assert len(changed) >= len(by_seg) // 2
    both = run_cli("merge", "-w", str(workspace), "--mask", "learned*seg-prd*seg-dst", "--overwrite", "--yes")
    assert both.code == 0, both.err
