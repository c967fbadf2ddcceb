"""Detectors on real photos: every face found, MTCNN against a reference run, box fits that hold."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.errors import ModelError, OptionError
from facelab.extract.detectors import DETECTORS, BoxFit, create_detector
from facelab.extract.detectors.mtcnn import RNet, load_net, weights_dir
from facelab.extract.detectors.retinaface import prior_boxes
from facelab.extract.landmarks import LandmarkPredictor, refit_box
from facelab.geometry.boxes import box_from_points

AUTOMATIC = [n for n in DETECTORS.names() if n != "manual"]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_retinaface_finds_all_five_people(multi_face_jpg):
    found = create_detector("retinaface").detect(cv2.imread(str(multi_face_jpg)))
    assert len(found) == 5 and all(d.score > 0.9 for d in found)
    # the five faces are distinct people, not duplicates of one
    assert max(iou(a.box, b.box) for i, a in enumerate(found) for b in found[i + 1:]) < 0.1


def test_retinaface_finds_all_six_people(t1_bgr):
    found = create_detector("retinaface").detect(t1_bgr)
    assert len(found) == 6
    assert max(iou(a.box, b.box) for i, a in enumerate(found) for b in found[i + 1:]) < 0.1


def test_retinaface_prior_count_matches_the_model_output():
    det = create_detector("retinaface")
    loc, conf, points = det.session.run(None, {"input": np.zeros((1, 3, 96, 160), np.float32)})
    assert loc.shape[1] == conf.shape[1] == points.shape[1] == len(prior_boxes(96, 160))


def test_mtcnn_matches_the_reference_run(multi_face_jpg):
    ref = json.loads((Path(__file__).parent / "data" / "mtcnn_multi_face.json").read_text())
    found = create_detector("mtcnn").detect(cv2.imread(str(multi_face_jpg)))
    own = ref["facelab"]
    assert len(found) == len(own["boxes"]) == len(ref["reference"]["boxes"]) == 5
    for det, box, prob, points in zip(found, own["boxes"], own["probs"], own["points"]):
        assert np.allclose(det.box, box, atol=0.5) and det.score == pytest.approx(prob, abs=1e-4)
        assert np.allclose(det.points5, points, atol=0.5)
    # facenet-pytorch's own pipeline finds the same faces and points (it crops slightly differently)
    for box, prob, points in zip(*(ref["reference"][k] for k in ("boxes", "probs", "points"))):
        best = max(found, key=lambda d: iou(d.box, box))
        assert iou(best.box, box) > 0.85 and prob > 0.99 and best.score > 0.99
        assert np.abs(best.points5 - np.array(points)).max() < 0.05 * (box[2] - box[0])


def test_mtcnn_weights_load_strictly():
    with pytest.raises(ModelError, match="pnet.pt"):
        load_net(RNet(), weights_dir() / "pnet.pt")


@pytest.mark.parametrize("name", AUTOMATIC)
def test_each_detector_finds_the_face_and_states_its_box_fit(name, single_face_jpg):
    frame = cv2.imread(str(single_face_jpg))
    detector = create_detector(name)
    found = detector.detect(frame)
    assert len(found) == 1
    box = found[0].box
    landmarks = LandmarkPredictor().landmarks(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), box, detector.box_fit)
    # The detector's box, turned into "tight box around the landmarks" by its box_fit, matches that box.
    assert iou(refit_box(box, detector.box_fit, BoxFit(0, 0, 1, 1)), box_from_points(landmarks)) > 0.75


def test_unknown_detector_suggests_the_close_name():
    with pytest.raises(OptionError, match="did you mean 'retinaface'"):
        create_detector("retinafac")
