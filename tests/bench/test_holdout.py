"""The quality benchmark's held-out split: one contiguous block at the end, a gap before it, disjoint from training."""

from __future__ import annotations

import pytest

from facelab.bench.holdout import split_frames


@pytest.mark.parametrize("frames,gap", [(472, 6), (72, 8), (40, 6), (10, 0)])
def test_holdout_is_the_contiguous_end_disjoint_from_training(frames, gap):
    split = split_frames(frames, 0.2, gap)
    train, holdout = list(split.train), list(split.holdout)
    assert train == list(range(1, train[-1] + 1))  # contiguous from the first frame
    assert holdout == list(range(holdout[0], frames + 1))  # contiguous to the last frame
    assert not set(train) & set(holdout)
    assert holdout[0] - train[-1] - 1 == gap  # exactly the gap is used by neither side
    assert len(holdout) == -(-frames * 2 // 10)  # ceil(20 %)
    assert len(train) + gap + len(holdout) == frames


def test_holdout_refuses_impossible_splits():
    assert list(split_frames(3, 0.2).holdout) == [3]  # at least one frame is held out
    with pytest.raises(ValueError):
        split_frames(5, 0.2, gap=4)  # no training frame left
    with pytest.raises(ValueError):
        split_frames(100, 1.0)
    with pytest.raises(ValueError):
        split_frames(100, 0.2, gap=-1)
