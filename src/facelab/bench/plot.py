"""The quality benchmark's pictures, drawn with OpenCV: bars per measure, the curves against budget minutes,
and the held-out dst faces beside every configuration's swaps of them."""

from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLOURS = ((200, 110, 30), (40, 130, 230), (60, 170, 60), (50, 50, 200), (150, 60, 150), (30, 160, 160),
            (120, 120, 120), (0, 90, 180))
_GREY, _BLACK = (150, 150, 150), (0, 0, 0)
PANEL_W, ROW_H, NAME_W = 440, 22, 120  # NAME_W: room for a 14-letter configuration name
CURVE_H = 260


def encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("OpenCV could not encode the plot as PNG")
    return data.tobytes()


def _text(image: np.ndarray, text: str, xy: tuple[int, int], scale: float = 0.45, colour=_BLACK) -> None:
    cv2.putText(image, text, (int(xy[0]), int(xy[1])), _FONT, scale, colour, 1, cv2.LINE_AA)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def bar_panel(title: str, names: Sequence[str], values: Sequence[float | None],
              marks: dict[str, float] | None = None, fmt: str = "{:.3f}") -> np.ndarray:
    """(H, PANEL_W, 3) uint8: one horizontal bar per name (None: "skipped"), axis from 0 to the largest value
    or mark; ``marks`` draws labelled vertical reference lines (e.g. {"real src": 0.42})."""
    marks = marks or {}
    height = 34 + ROW_H * len(names) + (14 if marks else 0)
    image = np.full((height, PANEL_W, 3), 255, np.uint8)
    _text(image, title, (6, 16), 0.47)
    numbers = [v for v in (*values, *marks.values()) if _finite(v)]
    top = max([*numbers, 1e-9]) * 1.08
    x0, x1 = NAME_W, PANEL_W - 70

    def x_of(v: float) -> int:
        return int(x0 + (x1 - x0) * max(0.0, v) / top)

    for i, (name, value) in enumerate(zip(names, values)):
        y = 28 + ROW_H * i
        _text(image, name[:14], (6, y + 14), 0.42)
        if _finite(value):
            cv2.rectangle(image, (x0, y + 3), (x_of(value), y + ROW_H - 5), _COLOURS[i % len(_COLOURS)], -1)
            _text(image, fmt.format(value), (x_of(value) + 4, y + 14), 0.4)
        else:
            _text(image, "skipped" if value is None else "n/a", (x0 + 4, y + 14), 0.4, _GREY)
    bottom = 28 + ROW_H * len(names)
    for label, value in marks.items():
        x = x_of(value)
        for y in range(24, bottom, 6):
            cv2.line(image, (x, y), (x, y + 3), _BLACK, 1)
    if marks:
        _text(image, "dashed: " + ", ".join(f"{k} {fmt.format(v)}" for k, v in marks.items()), (x0, bottom + 12),
              0.38)
    return image


def curve_panel(title: str, curves: dict[str, tuple[Sequence[float], Sequence[float]]], highlight: str | None,
                x_label: str) -> np.ndarray:
    """(CURVE_H, 2 * PANEL_W, 3) uint8 line chart of (x, y) curves with a legend; ``highlight`` drawn thick.
    The i-th curve has the i-th bar's colour; an empty one is left out."""
    width = 2 * PANEL_W
    image = np.full((CURVE_H, width, 3), 255, np.uint8)
    left, right, top, bottom = 56, 180, 28, 34  # right: room for "name (best)"
    _text(image, title, (6, 16), 0.47)
    cv2.rectangle(image, (left, top), (width - right, CURVE_H - bottom), (190, 190, 190), 1)
    points = [(x, y) for xs, ys in curves.values() for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    if not points:
        _text(image, "no data", (width // 2 - 30, CURVE_H // 2), 0.5, _GREY)
        return image
    x_hi = max(p[0] for p in points) or 1.0
    y_lo, y_hi = min(0.0, min(p[1] for p in points)), max(p[1] for p in points) * 1.05 or 1.0

    def xy(x: float, y: float) -> tuple[int, int]:
        return (int(left + (width - right - left) * x / x_hi),
                int(CURVE_H - bottom - (CURVE_H - bottom - top) * (y - y_lo) / (y_hi - y_lo)))

    for value in (y_lo, (y_lo + y_hi) / 2, y_hi):
        _text(image, f"{value:.2f}", (6, xy(0, value)[1] + 4), 0.38, (80, 80, 80))
    for value in (0.0, x_hi / 2, x_hi):
        _text(image, f"{value:.2g}", (xy(value, y_lo)[0] - 8, CURVE_H - bottom + 14), 0.38, (80, 80, 80))
    _text(image, x_label, (left + 4, CURVE_H - 6), 0.4, (80, 80, 80))
    for i, (name, (xs, ys)) in enumerate(curves.items()):
        if not len(xs):
            continue  # a skipped configuration keeps its colour slot, so colours match the bars
        colour, thick = _COLOURS[i % len(_COLOURS)], 3 if name == highlight else 1
        line = [xy(x, y) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
        for a, b in zip(line, line[1:]):
            cv2.line(image, a, b, colour, thick, cv2.LINE_AA)
        for p in line:
            cv2.circle(image, p, 3 if thick > 1 else 2, colour, -1, cv2.LINE_AA)
        _text(image, name + (" (best)" if name == highlight else ""), (width - right + 10, top + 14 + 18 * i),
              0.42, colour)
    return image


def _stack(panels: list[np.ndarray], columns: int) -> np.ndarray:
    rows = []
    for i in range(0, len(panels), columns):
        row = panels[i:i + columns]
        height = max(p.shape[0] for p in row)
        row = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in row]
        row += [np.full((height, PANEL_W, 3), 255, np.uint8)] * (columns - len(row))
        rows.append(np.hstack(row))
    return np.vstack(rows)


def quality_figure(report: dict[str, Any]) -> np.ndarray:
    """The whole benchmark in one picture: a header, a bar panel per measure, iterations and ms/iteration, and
    the held-out SSIM and sharpness of every configuration against budget minutes (the best drawn thick)."""
    from facelab.bench.quality import MEASURES

    configs = report["configs"]
    names = [c["name"] for c in configs]
    final = [c["final"] if not c["skipped"] and c["final"] else None for c in configs]
    refs = next(iter(report["reference"].values()), {})
    marks = {"to_src": {"real src": refs.get("real_src", {}).get("to_src"),
                        "no swap": refs.get("real_dst", {}).get("to_src")},
             "to_dst": {"real src": refs.get("real_src", {}).get("to_dst"),
                        "no swap": refs.get("real_dst", {}).get("to_dst")},
             "sharpness": {"real": 1.0}}
    panels = [bar_panel(f"{label} ({'higher' if way > 0 else 'lower' if way < 0 else 'nearest 1'} is better)",
                        names, [f.get(key) if f else None for f in final],
                        {k: v for k, v in marks.get(key, {}).items() if _finite(v)})
              for key, label, way in MEASURES]
    panels.append(bar_panel("iterations reached", names, [None if c["skipped"] else c["iterations"] for c in configs],
                            fmt="{:.0f}"))
    panels.append(bar_panel("ms per iteration (wall, median)", names,
                            [None if c["skipped"] else c["ms_per_iteration"] for c in configs], fmt="{:.0f}"))
    grid = _stack(panels, 2)
    header = np.full((44, grid.shape[1], 3), 255, np.uint8)
    data = report["data"]
    _text(header, f"facelab bench quality: {report['minutes']:g} min budget per configuration "
                  f"({report['budget']}), seed {report['seed']}",
          (6, 18), 0.5)
    _text(header, f"held out: src frames {data['src']['holdout_first']}-{data['src']['holdout_last']} "
                  f"({data['src']['faces']['holdout']} faces), dst frames {data['dst']['holdout_first']}-"
                  f"{data['dst']['holdout_last']} ({data['dst']['faces']['holdout']} faces); best: {report['best']}",
          (6, 36), 0.42)
    x_label = "budget minutes"
    curves = [curve_panel(f"held-out {label} against budget minutes", {
        c["name"]: ([p["budget_minutes"] for p in c["curve"]], [p[key] for p in c["curve"]]) for c in configs},
        report["best"], x_label) for key, label in (("ssim", "src->src SSIM"), ("sharpness", "swap sharpness"))]
    return np.vstack([header, grid, *curves])


def swaps_figure(dst_faces: np.ndarray, swaps: list[tuple[str, np.ndarray]], columns: int = 8,
                 size: int = 96) -> np.ndarray:
    """Rows of faces: the held-out dst faces (first row), then each configuration's swaps of them, all resized
    to ``size`` px, ``columns`` faces spread over the held-out block, the row's name on its left."""
    picks = np.linspace(0, len(dst_faces) - 1, min(columns, len(dst_faces))).round().astype(int)
    rows = []
    for name, faces in [("dst", dst_faces), *swaps]:
        label = np.full((size, NAME_W, 3), 255, np.uint8)
        _text(label, name[:14], (4, size // 2), 0.42)
        tiles = [cv2.resize(faces[i], (size, size), interpolation=cv2.INTER_AREA) for i in picks]
        rows.append(np.hstack([label, *tiles]))
    return np.vstack(rows)
