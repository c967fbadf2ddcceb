"""The score report: a summary table (text), per-frame curves drawn with OpenCV, and one self-contained HTML page
(plots and worst-frame thumbnails inlined as PNG data URIs, so the file can be mailed or opened anywhere)."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    from facelab.score.runner import FaceScore

# BGR line colours, one per curve of a plot.
_COLOURS = ((200, 110, 30), (40, 130, 230), (60, 170, 60), (50, 50, 200))
_FONT = cv2.FONT_HERSHEY_SIMPLEX

# (summary section, key, label, unit, how to read it) for the table and the page.
ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ("identity", "share_nearer_to_src", "faces nearer to src than to dst", "%", "higher is better: looks like src"),
    ("identity", "to_src", "identity distance to src", "", "lower is better; < 0.6 = same person for dlib"),
    ("identity", "to_dst", "identity distance to dst", "", "higher is better"),
    ("pose", "error_deg", "pose error (pitch, yaw, roll)", "deg", "lower is better: moves like dst"),
    ("expression", "landmark_error", "expression (landmark) error", "IOD", "lower is better; in eye distances"),
    ("flicker", "flicker", "flicker", "grey levels", "lower is better; 0 = no change dst lacks"),
    ("flicker", "change_ratio", "face change / dst's change", "x", "1 = as lively as dst"),
)


def _fmt(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "%":
        return f"{100 * value:.0f} %"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.3f} {unit}".strip()


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as aligned text lines (what the CLI prints)."""
    lines = [f"{summary['faces_found']} of {summary['faces']} dst face(s) found again in {summary['frames']} "
             f"merged frame(s)"]
    for section, key, label, unit, hint in ROWS:
        lines.append(f"  {label:34s} {_fmt(summary[section][key], unit):>16s}   ({hint})")
    rec = summary.get("reconstruction", {})
    if "skipped" in rec:
        lines.append(f"  {'reconstruction SSIM':34s} {'n/a':>16s}   ({rec['skipped']})")
    for side in ("src", "dst"):
        if side in rec:
            kind = "held-out" if rec[side]["held_out"] else "training faces, not held out"
            lines.append(f"  {f'reconstruction SSIM {side}->{side}':34s} {rec[side]['ssim']:16.3f}   "
                         f"(higher is better; {rec[side]['faces']} {kind})")
    return lines


def line_plot(series: dict[str, Sequence[float | None]], title: str, width: int = 900, height: int = 220
              ) -> np.ndarray:
    """(height, width, 3) uint8 BGR chart of one or more per-frame curves (None/nan = gap) with a legend,
    the y range's ends labelled and frame numbers on the x axis."""
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, 16, 40, 24
    cv2.putText(image, title, (left, 15), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    arrays = {k: np.array([np.nan if v is None else v for v in s], np.float64) for k, s in series.items()}
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays.values()] or [np.zeros(0)])
    n = max((len(a) for a in arrays.values()), default=0)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), (180, 180, 180), 1)
    if not finite.size or n == 0:
        cv2.putText(image, "no data", (width // 2 - 30, height // 2), _FONT, 0.5, (120, 120, 120), 1, cv2.LINE_AA)
        return image
    lo, hi = min(0.0, float(finite.min())), float(finite.max())
    hi = hi if hi > lo else lo + 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[int, int]:
        x = left + (plot_w * i / max(n - 1, 1))
        return int(round(x)), int(round(top + plot_h * (1 - (v - lo) / (hi - lo))))

    for value in (lo, hi):
        cv2.putText(image, f"{value:.3g}", (4, xy(0, value)[1] + 4), _FONT, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    for i in (0, n - 1):
        label_w = cv2.getTextSize(str(i + 1), _FONT, 0.4, 1)[0][0]
        cv2.putText(image, str(i + 1), (xy(i, lo)[0] - label_w // 2, height - 8), _FONT, 0.4, (80, 80, 80), 1, cv2.LINE_AA)
    for k, (name, values) in enumerate(arrays.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        points = [xy(i, v) if math.isfinite(v) else None for i, v in enumerate(values)]
        for a, b in zip(points, points[1:]):
            if a is not None and b is not None:
                cv2.line(image, a, b, colour, 1, cv2.LINE_AA)
        for p in points if len(values) < 60 else ():
            if p is not None:
                cv2.circle(image, p, 2, colour, -1, cv2.LINE_AA)
        x = left + 140 * k  # the legend: one row under the title
        cv2.line(image, (x, 28), (x + 20, 28), colour, 2)
        cv2.putText(image, name, (x + 24, 32), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def png_data_uri(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a report image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def plots(faces: Sequence["FaceScore"]) -> list[np.ndarray]:
    """The per-face curves of the page (x: face number in frame order)."""
    col = lambda name: [getattr(f, name) for f in faces]  # noqa: E731
    return [
        line_plot({"to src": col("to_src"), "to dst": col("to_dst")},
                  "identity distance (dlib; < 0.6 = same person)"),
        line_plot({"pose": col("pose_error"), "yaw": col("yaw_error")}, "pose error vs dst (degrees)"),
        line_plot({"landmarks": col("expression_error")}, "expression error vs dst (inter-ocular distances)"),
        line_plot({"flicker": col("flicker"), "face change": col("merged_change"), "dst change": col("dst_change")},
                  "frame-to-frame change in the face (grey levels)"),
    ]


def html_page(summary: dict[str, Any], faces: Sequence["FaceScore"],
              worst: Sequence[tuple["FaceScore", np.ndarray | None]]) -> str:
    """The whole report page as one HTML string (no external files)."""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(label)}</td><td class=n>{esc(_fmt(summary[s][k], unit))}</td>"
                   f"<td class=h>{esc(hint)}</td></tr>" for s, k, label, unit, hint in ROWS)
    rec = summary.get("reconstruction", {})
    if "skipped" in rec:
        rows += f"<tr><td>reconstruction SSIM</td><td class=n>n/a</td><td class=h>{esc(rec['skipped'])}</td></tr>"
    for side in ("src", "dst"):
        if side in rec:
            kind = "held-out faces" if rec[side]["held_out"] else "training faces (not held out)"
            rows += (f"<tr><td>reconstruction SSIM {side}&rarr;{side}</td><td class=n>{rec[side]['ssim']:.3f}</td>"
                     f"<td class=h>higher is better; {rec[side]['faces']} {kind}</td></tr>")
    charts = "".join(f"<img src='{png_data_uri(p)}' alt='plot'>" for p in plots(faces))
    cards = []
    for face, thumb in worst:
        img = f"<img src='{png_data_uri(thumb)}' alt='merged | dst'>" if thumb is not None else ""
        facts = ("not found again in the merged frame" if not face.found else
                 f"to src {_fmt(face.to_src, '')} · pose {_fmt(face.pose_error, 'deg')} · "
                 f"expr {_fmt(face.expression_error, '')} · flicker {_fmt(face.flicker, '')}")
        cards.append(f"<figure>{img}<figcaption><b>frame {esc(face.frame)}</b> face {face.face_index}<br>"
                     f"{esc(facts)}</figcaption></figure>")
    worst_html = ("<h2>Worst frames <small>(merged | dst)</small></h2><div class=cards>" + "".join(cards) + "</div>"
                  if cards else "")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>facelab score</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:960px;margin:24px auto;color:#222}}
table{{border-collapse:collapse}} td{{padding:4px 10px;border-bottom:1px solid #ddd}}
td.n{{text-align:right;font-weight:bold}} td.h{{color:#666;font-size:90%}}
img{{display:block;margin:8px 0}} .cards{{display:flex;flex-wrap:wrap;gap:12px}}
figure{{margin:0;font-size:85%;width:256px}}
</style></head><body>
<h1>facelab score</h1>
<p>{summary['faces_found']} of {summary['faces']} dst face(s) found again in {summary['frames']} merged frame(s).
A good swap looks like src (identity) and moves like dst (pose, expression), without flicker.</p>
<table>{rows}</table>
<h2>Per frame</h2>{charts}
{worst_html}
</body></html>
"""
