"""Where the new face goes: a registry of base masks, combined by product (``learned*dst``).

Each base mask maps ``MaskInputs`` to an (S, S) float32 mask in [0, 1] in aligned-face space. A face
segmenter (``seg-prd``, ``seg-dst``) plugs in here once the mask editor can train one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from facelab.errors import OptionError
from facelab.geometry.masks import hull_mask
from facelab.registry import Registry


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


MaskFn = Callable[[MaskInputs], np.ndarray]
BASE_MASKS: Registry[MaskFn] = Registry("mask")


@BASE_MASKS.register("dst")
def dst_hull(inputs: MaskInputs) -> np.ndarray:
    return hull_mask(inputs.dst_landmarks, inputs.size, inputs.size)


@BASE_MASKS.register("learned")
def learned_prd(inputs: MaskInputs) -> np.ndarray:
    return _learned(inputs.learned_prd)


@BASE_MASKS.register("learned-dst")
def learned_dst(inputs: MaskInputs) -> np.ndarray:
    return _learned(inputs.learned_dst)


def _learned(mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        raise OptionError("this model learns no mask", fix="use --mask dst, or train a model with learn mask on")
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def _needs_segmenter(inputs: MaskInputs) -> np.ndarray:
    raise OptionError("seg-prd / seg-dst masks need a trained face segmenter, and none ships with any package",
                      fix="use --mask learned or dst (a segmenter comes with the mask editor)")


BASE_MASKS.register("seg-prd")(_needs_segmenter)
BASE_MASKS.register("seg-dst")(_needs_segmenter)


def resolve_mask_name(name: str, learns_mask: bool) -> str:
    """``auto`` → ``learned`` for a model that learns a mask, else ``dst``; other names checked part by part."""
    if name == "auto":
        return "learned" if learns_mask else "dst"
    for part in name.split("*"):
        BASE_MASKS.get(part)  # OptionError with "did you mean" for a wrong part
    return name


def build_mask(name: str, inputs: MaskInputs) -> np.ndarray:
    """The (size, size) float32 mask ``name`` (base masks joined by ``*`` multiply)."""
    mask = np.ones((inputs.size, inputs.size), np.float32)
    for part in name.split("*"):
        mask = mask * BASE_MASKS.get(part)(inputs)
    return mask
