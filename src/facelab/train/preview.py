"""Preview images written at each save: a grid of predictions and a loss graph (drawn with OpenCV)."""

from __future__ import annotations

import errno
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import OutputError
from facelab.io.files import write_bytes_atomic

ROWS = ("src", "src_src", "dst", "dst_dst", "dst_src")
ROW_LABELS = ("src", "src->src", "dst", "dst->dst", "dst->src")
_LABEL_WIDTH = 90
_SRC_COLOUR = (255, 160, 0)  # BGR: blue-ish for src
_DST_COLOUR = (0, 140, 255)  # orange for dst


def preview_grid(rows: dict[str, np.ndarray], iteration: int) -> np.ndarray:
    """One row per entry of ``ROWS`` (each (N, R, R, 3) float in [0, 1] or uint8, BGR), one column per face,
    a label column on the left and the iteration on top. Returns (H, W, 3) uint8 BGR.

    Rows may differ (a faceset of fewer faces than the preview shows, faces of another size): each face is
    resized to the first row's size and short rows end in blank cells."""
    faces_by_row = [_to_uint8(np.asarray(rows[key])) for key in ROWS]
    size = faces_by_row[0].shape[1]
    columns = max(len(faces) for faces in faces_by_row)
    strips = []
    for faces, label in zip(faces_by_row, ROW_LABELS):
        cells = [f if f.shape[:2] == (size, size) else cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
                 for f in faces]
        cells += [np.full((size, size, 3), 32, np.uint8)] * (columns - len(cells))
        strip = np.concatenate(cells, axis=1)
        tag = np.full((strip.shape[0], _LABEL_WIDTH, 3), 32, np.uint8)
        cv2.putText(tag, label, (6, strip.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (240, 240, 240), 1,
                    cv2.LINE_AA)
        strips.append(np.concatenate([tag, strip], axis=1))
    grid = np.concatenate(strips, axis=0)
    top = np.full((24, grid.shape[1], 3), 32, np.uint8)
    cv2.putText(top, f"iteration {iteration}", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (240, 240, 240), 1, cv2.LINE_AA)
    return np.concatenate([top, grid], axis=0)


def loss_graph(loss_src: list[float], loss_dst: list[float], width: int = 640, height: int = 240) -> np.ndarray:
    """(height, width, 3) uint8 BGR plot of both loss histories (log scale, averaged into one point per column)."""
    img = np.full((height, width, 3), 24, np.uint8)
    pad = 28
    series = [(np.asarray(v, np.float64), c) for v, c in ((loss_src, _SRC_COLOUR), (loss_dst, _DST_COLOUR)) if len(v)]
    finite = np.concatenate([s[np.isfinite(s) & (s > 0)] for s, _ in series]) if series else np.array([])
    if finite.size:
        lo, hi = np.log10(finite.min()), np.log10(finite.max())
        hi = hi if hi > lo else lo + 1e-3
        for values, colour in series:
            cols = _column_means(values, width - 2 * pad)
            ok = np.isfinite(cols) & (cols > 0)
            x = pad + np.linspace(0, width - 2 * pad, len(cols)) if len(cols) > 1 else np.array([pad])
            y = pad + (hi - np.log10(np.where(ok, cols, 10**lo))) / (hi - lo) * (height - 2 * pad)
            pts = np.stack([x, y], 1)[ok].round().astype(np.int32)
            if len(pts):
                cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)
        cv2.putText(img, f"{10**hi:.4g}", (2, pad - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
        cv2.putText(img, f"{10**lo:.4g}", (2, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    iterations = max((len(v) for v in (loss_src, loss_dst)), default=0)
    for x, text, colour in ((pad + 70, "src loss", _SRC_COLOUR), (pad + 160, "dst loss", _DST_COLOUR),
                            (pad + 250, f"{iterations} iterations", (200, 200, 200))):
        cv2.putText(img, text, (x, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    cv2.rectangle(img, (pad, pad), (width - pad, height - pad), (90, 90, 90), 1)
    return img


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically; a full disk raises OutputError (the model's own save is written before)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OutputError("cannot encode the preview as PNG", path=path, fix="report this as a facelab bug")
    try:
        write_bytes_atomic(path, data.tobytes())
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OutputError("the disk is full: this image was not written (the model's last complete save is kept)",
                          path=path, fix="free disk space, then train again to resume") from None


def _column_means(values: np.ndarray, columns: int) -> np.ndarray:
    if len(values) <= columns:
        return values
    edges = np.linspace(0, len(values), columns + 1).astype(int)
    return np.array([values[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])


def _to_uint8(faces: np.ndarray) -> np.ndarray:
    if faces.dtype == np.uint8:
        return faces
    return (np.clip(faces, 0, 1) * 255 + 0.5).astype(np.uint8)
