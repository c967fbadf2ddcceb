"""Non-maximum suppression on boxes with hand-computed overlaps."""

import numpy as np

from facelab.geometry.boxes import box_from_points, nms


def test_nms_keeps_best_of_overlapping_boxes_and_separate_ones():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    # IoU(0, 1) = 81 / 119 = 0.68: box 0 goes at 0.5, stays at 0.7
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]


def test_nms_min_mode_drops_a_box_inside_another():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], float)
    assert nms(boxes, [0.9, 0.8], 0.7, mode="union").tolist() == [0, 1]
    assert nms(boxes, [0.9, 0.8], 0.7, mode="min").tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_box_from_points():
    assert box_from_points([[3, 4], [1, 9], [7, 2]]) == (1, 2, 7, 9)
