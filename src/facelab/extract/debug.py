"""aligned_debug images: the frame with each face's detector box, 68 landmarks and face-type square drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facelab.errors import OutputError
from facelab.geometry.alignment import face_square_in_frame
from facelab.io.files import write_bytes_atomic
from facelab.types import FaceMeta

_BOX, _SQUARE, _POINTS = (0, 0, 255), (0, 255, 0), (255, 255, 0)  # BGR: red, green, cyan


def draw_debug(frame_bgr: np.ndarray, metas: list[FaceMeta]) -> np.ndarray:
    """A copy of the (H, W, 3) uint8 frame with every face drawn; line widths follow the frame size."""
    out = frame_bgr.copy()
    thick = max(1, round(max(out.shape[:2]) / 640))
    for meta in metas:
        x0, y0, x1, y1 = (int(round(v)) for v in meta.source_rect)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), _BOX, thick, cv2.LINE_AA)
        square = face_square_in_frame(meta.face_from_image, meta.image_size) - 0.5  # corners → OpenCV centres
        cv2.polylines(out, [np.round(square).astype(np.int32)], True, _SQUARE, thick, cv2.LINE_AA)
        for x, y in meta.source_landmarks - 0.5:
            cv2.circle(out, (int(round(x)), int(round(y))), thick, _POINTS, -1, cv2.LINE_AA)
        cv2.putText(out, f"{meta.face_index} {meta.score:.2f}", (x0, max(0, y0 - 4 * thick)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, _BOX, thick, cv2.LINE_AA)
    return out


def debug_image_name(frame_name: str) -> str:
    """A frame's debug image: ``<frame stem>.jpg``."""
    return Path(frame_name).stem + ".jpg"


def write_debug_image(path: Path, frame_bgr: np.ndarray, metas: list[FaceMeta]) -> None:
    """Draw the faces on the frame and write it (atomically) as a JPEG; OutputError when it cannot be encoded."""
    ok, buf = cv2.imencode(".jpg", draw_debug(frame_bgr, metas), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OutputError("could not encode the debug image", path=path)
    write_bytes_atomic(path, buf.tobytes())
