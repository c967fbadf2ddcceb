"""Faces given by the user as rectangles (the manual pass): no detection, only the boxes it is handed.

The web UI draws the rectangle; from the command line a list of rectangles comes as JSON
(``{"00012.png": [[x0, y0, x1, y1], ...], ...}``, see ``load_rectangles``), handed to
``Extractor(detector="manual", rectangles=...)`` or ``Extractor.faces_in_boxes``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facelab.errors import InputError
from facelab.extract.detectors import BoxFit, Detection


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
    """Read ``{frame file name: [[x0, y0, x1, y1], ...]}`` from a JSON file; InputError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return {str(name): [_rect(r) for r in rects] for name, rects in data.items()}
    except FileNotFoundError:
        raise InputError("rectangles file not found", path=path, fix="check the path") from None
    except (ValueError, TypeError, AttributeError) as err:
        raise InputError(f"not a rectangles file ({err})", path=path,
                         fix='write {"00001.png": [[x0, y0, x1, y1]], ...}') from None


def _rect(values) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in values)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty rectangle {values}")
    return x0, y0, x1, y1
