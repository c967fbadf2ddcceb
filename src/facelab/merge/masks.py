"""Where the new face goes: a registry of masks, the base ones and their products (``learned*dst``).

Each mask maps ``MaskInputs`` to an (S, S) float32 mask in [0, 1] in aligned-face space. A face
segmenter the user trains (XSeg, ``facelab.xseg``) makes ``seg-prd`` and ``seg-dst``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from facelab.errors import OptionError
from facelab.geometry.masks import hull_mask
from facelab.registry import Registry
from facelab.xseg import masks as xseg_masks


@dataclass(frozen=True)
class MaskInputs:
    """What a mask can be made from, all in the aligned square of side ``size``.

    ``dst_landmarks`` (68, 2) the dst face's points; ``learned_prd`` / ``learned_dst`` (size, size) float32
    the model's predicted src / dst masks, or None when the model learns no mask.
    """

    size: int
    dst_landmarks: np.ndarray
    learned_prd: np.ndarray | None
    learned_dst: np.ndarray | None
    # For the XSeg masks (facelab.xseg.masks): the dst and predicted faces (size, size, 3) float32 BGR [0, 1],
    # the dst face's metadata, the (2, 3) frame → this square matrix, the loaded segmenter (or None), and the
    # segmenter's mask of the dst face when it was computed beforehand for a batch (or None).
    dst_face: np.ndarray | None = None
    predicted: np.ndarray | None = None
    dst_meta: Any = None
    face_from_frame: np.ndarray | None = None
    segmenter: Any = None
    seg_dst: np.ndarray | None = None


MaskFn = Callable[[MaskInputs], np.ndarray]
MASKS: Registry[MaskFn] = Registry("mask")  # in the order the merge prompt numbers them (the seed's first)


@MASKS.register("learned", "the model's predicted mask")
def learned_prd(inputs: MaskInputs) -> np.ndarray:
    return _learned(inputs.learned_prd)


@MASKS.register("dst", "landmark hull of the dst face")
def dst_hull(inputs: MaskInputs) -> np.ndarray:
    return hull_mask(inputs.dst_landmarks, inputs.size, inputs.size)


MASKS.register("seg-prd", "the XSeg segmenter on the predicted face")(xseg_masks.seg_prd)
MASKS.register("seg-dst", "the XSeg segmenter on the dst face (its applied mask when it has one)")(
    xseg_masks.seg_dst)


def _learned(mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        raise OptionError("this model learns no mask", fix="use --mask dst, or train a model with learn mask on")
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def _register_product(name: str) -> None:
    """Register ``a*b*…``: the product of the masks named (each registered above)."""
    parts = [MASKS.get(part) for part in name.split("*")]

    def product(inputs: MaskInputs) -> np.ndarray:
        mask = np.ones((inputs.size, inputs.size), np.float32)
        for part in parts:
            mask = mask * part(inputs)
        return mask

    MASKS.register(name)(product)


_register_product("seg-prd*seg-dst")
_register_product("learned*seg-prd*seg-dst")


@MASKS.register("learned-dst", "the model's dst mask")
def learned_dst(inputs: MaskInputs) -> np.ndarray:
    return _learned(inputs.learned_dst)


for _name in ("learned*dst", "learned*learned-dst", "learned-dst*dst", "learned*learned-dst*dst", "learned*seg-prd",
              "seg-dst*dst"):
    _register_product(_name)


def resolve_mask_name(name: str, learns_mask: bool) -> str:
    """``auto`` → ``learned`` for a model that learns a mask, else ``dst``; other names are checked."""
    if name == "auto":
        return "learned" if learns_mask else "dst"
    MASKS.get(name)  # OptionError with "did you mean" for a wrong name
    return name


def mask_parts(names: list[str], learns_mask: bool) -> set[str]:
    """The base masks the mask ``names`` multiply (``learned*seg-dst`` → learned, seg-dst)."""
    return {part for name in names for part in resolve_mask_name(name, learns_mask).split("*")}


def learned_masks_needed(names: list[str], learns_mask: bool) -> tuple[bool, bool]:
    """Whether any of the mask ``names`` uses the model's (swap mask, dst mask): a model need not compute the
    others."""
    parts = mask_parts(names, learns_mask)
    return "learned" in parts, "learned-dst" in parts


def build_mask(name: str, inputs: MaskInputs) -> np.ndarray:
    """The (size, size) float32 mask ``name``."""
    return MASKS.get(name)(inputs)
