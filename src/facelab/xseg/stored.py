"""An applied XSeg mask inside a face's own metadata: ``extra["xseg_mask"]`` = ``{"png": base64 of an 8-bit
grey PNG at the face's size, "iteration": the XSeg iteration that made it}``. NumPy/OpenCV only (merge reads it).

Face files come from strangers: the stored mask is decoded only after its length, base64 alphabet, PNG header
and size are checked, and a wrong one reads as "no mask" with a warning, never as garbage.
"""

from __future__ import annotations

import base64
import binascii
import logging

import cv2
import numpy as np

from facelab.io.faceimage import image_header_size
from facelab.types import FaceMeta

log = logging.getLogger(__name__)
KEY = "xseg_mask"
MAX_STORED_BYTES = 4 * 2**20  # base64 text; a 1024 px mask PNG is ~30 kB


def encode_mask(mask: np.ndarray, iteration: int) -> dict:
    """The metadata value for a (S, S) float mask in [0, 1]."""
    ok, png = cv2.imencode(".png", np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8),
                           [cv2.IMWRITE_PNG_COMPRESSION, 3])  # 4× faster than 9, 20 % bigger
    if not ok:
        raise ValueError("cannot encode the mask as PNG")
    return {"png": base64.b64encode(png.tobytes()).decode("ascii"), "iteration": int(iteration)}


def stored_mask(meta: FaceMeta) -> np.ndarray | None:
    """The (S, S) float32 [0, 1] mask applied to this face (S = ``meta.image_size``), or None when it has none
    or it is unreadable."""
    value = meta.extra.get(KEY)
    if value is None:
        return None
    try:
        text = value["png"]
        if not isinstance(text, str) or len(text) > MAX_STORED_BYTES:
            raise ValueError("not a short text")
        data = base64.b64decode(text, validate=True)
        size = image_header_size(data)
        if data[:8] != b"\x89PNG\r\n\x1a\n" or size is None or size != (size[0], size[0]) or size[0] > 8192:
            raise ValueError(f"not a square PNG mask ({size})")
        mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ValueError("the PNG does not decode")
    except (TypeError, KeyError, ValueError, binascii.Error) as err:
        log.warning("ignoring an unreadable XSeg mask in %s's metadata (%s)", meta.source_filename or "a face", err)
        return None
    mask = mask.astype(np.float32) / 255
    s = meta.image_size
    return mask if mask.shape == (s, s) else cv2.resize(mask, (s, s), interpolation=cv2.INTER_LINEAR)


def has_mask(meta: FaceMeta) -> bool:
    return KEY in meta.extra
