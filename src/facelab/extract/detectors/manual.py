"""Faces given by the user as rectangles (the manual pass): no detection, only the boxes it is handed.

The web UI draws the rectangle; from the command line a list of rectangles comes as JSON
(``{"00012.png": [[x0, y0, x1, y1], ...], ...}``, see ``load_rectangles``), handed to
``Extractor(detector="manual", rectangles=...)`` or ``Extractor.faces_in_boxes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facelab.errors import InputError
from facelab.extract.detectors import BoxFit, Detection
from facelab.io.safe_json import loads_bounded
from facelab.names import is_plain_name
from facelab.types import MAX_COORDINATE


class Manual:
    """Finds nothing by itself: the Extractor cuts the faces of the rectangles it is given for each frame."""

    name = "manual"
    # A user's rectangle is drawn around the face much like RetinaFace's box: brows-to-chin plus forehead.
    box_fit = BoxFit(dx=0.0, dy=-0.165, width=1.0, height=1.31)

    def __init__(self, device: object = "cpu"):
        del device  # nothing runs on a device

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        return []


def load_rectangles(path: str | Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """Read ``{frame file name: [[x0, y0, x1, y1], ...]}`` from a JSON file; InputError naming the file and the
    entry (frame name and rectangle number) that is wrong."""
    path = Path(path)
    fix = 'write {"00001.png": [[x0, y0, x1, y1]], ...} in frame pixels, x0 < x1 and y0 < y1'
    try:
        data = loads_bounded(path.read_bytes())
    except FileNotFoundError:
        raise InputError("rectangles file not found", path=path, fix="check the path") from None
    except OSError as err:
        raise InputError(f"cannot read the rectangles file ({err.strerror})", path=path) from None
    except ValueError as err:
        raise InputError(f"not a rectangles file ({err})", path=path, fix=fix) from None
    if not isinstance(data, dict):
        raise InputError("not a rectangles file (not a JSON object)", path=path, fix=fix)
    out = {}
    for name, rects in data.items():
        if not is_plain_name(name):
            raise InputError(f"{name[:80]!r} is not a frame file name", path=path, fix=fix)
        if not isinstance(rects, list):
            raise InputError(f"{name}: the rectangles must be a list", path=path, fix=fix)
        out[name] = []
        for number, values in enumerate(rects, 1):
            try:
                out[name].append(_rect(values))
            except ValueError as err:
                raise InputError(f"{name}: rectangle {number} {repr(values)[:60]} {err}", path=path, fix=fix) from None
    return out


def _rect(values: Any) -> tuple[float, float, float, float]:
    """One [x0, y0, x1, y1]: four finite numbers within ±MAX_COORDINATE, a non-empty box that reaches into the
    positive quadrant (a frame's pixels); ValueError saying what is wrong with it."""
    if not (isinstance(values, list) and len(values) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise ValueError("is not four numbers [x0, y0, x1, y1]")
    if not all(abs(v) <= MAX_COORDINATE for v in values):  # NaN fails every comparison
        raise ValueError(f"has a number that is not finite or beyond ±{MAX_COORDINATE:g}")
    x0, y0, x1, y1 = (float(v) for v in values)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("is empty (it needs x0 < x1 and y0 < y1)")
    if x1 <= 0 or y1 <= 0:
        raise ValueError("lies outside the frame (at negative coordinates)")
    return x0, y0, x1, y1
