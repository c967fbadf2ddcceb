"""The learning-rate schedule of runs with a known end: where it starts, where it ends, what it ignores."""

from __future__ import annotations

import pytest

from facelab.train.schedule import end_decay, run_share


def test_run_share_takes_the_nearer_end_and_none_without_one():
    assert run_share(50, 100, 10.0, None) == 0.5
    assert run_share(50, 100, 90.0, 100.0) == 0.9  # the time budget runs out first
    assert run_share(150, 100, 0.0, None) == 1.0
    assert run_share(50, None, 10.0, None) is None


def test_end_decay_is_flat_then_falls_to_the_floor():
    assert end_decay(None, 0.3) == 1.0 and end_decay(0.9, 0.0) == 1.0
    assert end_decay(0.5, 0.3) == 1.0 and end_decay(0.7, 0.3) == 1.0
    assert end_decay(0.85, 0.3) == pytest.approx(0.525)
    assert end_decay(1.0, 0.3) == pytest.approx(0.05)
    factors = [end_decay(k / 100, 0.3) for k in range(101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))
