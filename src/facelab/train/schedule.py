"""Learning-rate schedules for runs whose end is known (a target iteration or a time budget).

A run that stops at a known point ends better when its learning rate comes down before that point: the last
steps then settle into a minimum instead of jittering around it (the "budgeted training" result: a decay to
near zero by the end of the budget beats a constant rate at every budget).
"""

from __future__ import annotations

import math


def run_share(iteration: int, target: int | None, elapsed: float, seconds: float | None) -> float | None:
    """How far a run is, 0..1: the larger of ``iteration`` ÷ the ``target`` iteration and ``elapsed`` ÷ the
    ``seconds`` it may take, of the ends it has (None: neither is known, so no schedule applies)."""
    shares = [iteration / target] if target else []
    shares += [elapsed / seconds] if seconds else []
    return min(1.0, max(shares)) if shares else None


def end_decay(share: float | None, decay_share: float, floor: float = 0.05) -> float:
    """Factor on the learning rate at ``share`` of a run: 1 until its last ``decay_share``, then a half cosine
    down to ``floor`` at the end. 1 when the end is unknown (``share`` None) or ``decay_share`` is 0."""
    if share is None or decay_share <= 0:
        return 1.0
    into = (share - (1 - decay_share)) / decay_share
    if into <= 0:
        return 1.0
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(into, 1.0)))
