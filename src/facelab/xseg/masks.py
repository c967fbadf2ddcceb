"""The merge masks XSeg makes (registered in ``facelab.merge.masks`` as ``seg-prd`` and ``seg-dst``).

Each takes the merge's ``MaskInputs`` (the aligned work square of side S) and returns an (S, S) float32 mask in
[0, 1]. ``seg-dst`` uses the mask `facelab xseg apply` stored in the dst face's metadata when there is one
(warped from the face file's square into the work square), else the segmenter's mask of the dst face (computed
for a whole batch beforehand when merging a folder, else here); ``seg-prd`` runs the segmenter on the predicted
face. NumPy/OpenCV only: the segmenter arrives loaded, in the inputs.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from facelab.errors import OptionError
from facelab.geometry.alignment import compose
from facelab.xseg.stored import stored_mask

_FIX = "train one with `facelab xseg train` (and apply it to data_dst/aligned with `facelab xseg apply`)"


def seg_dst(inputs: Any) -> np.ndarray:
    meta = getattr(inputs, "dst_meta", None)
    stored = stored_mask(meta) if meta is not None else None
    if stored is not None and getattr(inputs, "face_from_frame", None) is not None:
        work_from_file = compose(inputs.face_from_frame, meta.image_from_face)
        return cv2.warpAffine(stored, work_from_file, (inputs.size, inputs.size), flags=cv2.INTER_LINEAR,
                              borderValue=0)
    batched = getattr(inputs, "seg_dst", None)
    if batched is not None and batched.shape == (inputs.size, inputs.size):
        return batched
    return _segment(inputs, getattr(inputs, "dst_face", None), "seg-dst")


def seg_prd(inputs: Any) -> np.ndarray:
    return _segment(inputs, getattr(inputs, "predicted", None), "seg-prd")


def _segment(inputs: Any, face: np.ndarray | None, name: str) -> np.ndarray:
    """The segmenter's mask of ``face`` (S, S, 3) float32 BGR [0, 1]."""
    segmenter = getattr(inputs, "segmenter", None)
    if segmenter is None or face is None:
        raise OptionError(f"--mask {name} needs a trained XSeg face segmenter, and this workspace has none"
                          + (" (and the dst faces carry no applied XSeg mask)" if name == "seg-dst" else ""),
                          fix=_FIX)
    face8 = np.clip(np.rint(face * 255), 0, 255).astype(np.uint8)
    return segmenter.predict(face8[None])[0].astype(np.float32)
