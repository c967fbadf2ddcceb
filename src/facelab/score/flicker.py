"""Does the merged face flicker? Its frame-to-frame change that the dst's own change does not explain.

For consecutive frames t-1, t and the dst face region R at t (the hull of the dst face's 68 landmarks, so the
same pixels in both frames):

- ``merged_change`` = mean over R of |M_t - M_{t-1}| (grey levels 0-255, all channels),
- ``dst_change``    = mean over R of |D_t - D_{t-1}|,
- ``flicker``       = mean over R of |(M_t - M_{t-1}) - (D_t - D_{t-1})|.

Motion and light changes the dst already has cancel in ``flicker``; what is left is change the swap added.
A still sequence scores 0, and so does a merge that left the video unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameChange:
    merged_change: float
    dst_change: float
    flicker: float


def region_change(merged_prev: np.ndarray, merged: np.ndarray, dst_prev: np.ndarray, dst: np.ndarray,
                  region: np.ndarray) -> FrameChange:
    """Changes between two consecutive frames inside ``region``.

    Frames: (H, W, 3) uint8 BGR, all four the same size; ``region``: (H, W) float or bool, > 0.5 inside.
    An empty region gives zeros.
    """
    shapes = {merged_prev.shape, merged.shape, dst_prev.shape, dst.shape}
    if len(shapes) != 1:
        raise ValueError(f"frames differ in size: {sorted(shapes)}")
    inside = np.asarray(region) > 0.5
    if not inside.any():
        return FrameChange(0.0, 0.0, 0.0)
    m = merged[inside].astype(np.float32) - merged_prev[inside].astype(np.float32)
    d = dst[inside].astype(np.float32) - dst_prev[inside].astype(np.float32)
    return FrameChange(float(np.abs(m).mean()), float(np.abs(d).mean()), float(np.abs(m - d).mean()))


def change_ratio(merged_changes: np.ndarray, dst_changes: np.ndarray) -> float:
    """Total merged change over total dst change (1: the face changes as much as dst's; nan when dst is still)."""
    total = float(np.sum(dst_changes))
    return float(np.sum(merged_changes)) / total if total > 0 else float("nan")
