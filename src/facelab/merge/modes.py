"""Blend modes: how one prepared face layer goes into the frame. A registry, so new modes plug in.

A mode gets the output frame so far (the merger's own copy, changed in place) and a ``FaceLayer`` (all in
aligned space) and returns the frame and the pasted patch.
A mode's ``background`` is the canvas it starts from: a copy of the dst frame, the frame in grey
(``hist-match-bw``) or black (the raw layers for an editor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from facelab.geometry.blend import Patch, overlay, seamless, warp_to_frame
from facelab.geometry.colour import hist_match
from facelab.registry import Registry


@dataclass(frozen=True)
class FaceLayer:
    """One face ready to paste: ``face`` (S, S, 3) float32 BGR [0, 1] (colour-transferred prediction),
    ``alpha`` (S, S) float32 (mask after erode/blur), ``raw_mask`` (S, S) (before erode/blur),
    ``dst_face`` (S, S, 3) float32 (the dst face it replaces), ``face_from_frame`` (2, 3) where to paste."""

    face: np.ndarray
    alpha: np.ndarray
    raw_mask: np.ndarray
    dst_face: np.ndarray
    face_from_frame: np.ndarray


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


@dataclass(frozen=True)
class BlendMode:
    """``composite`` pastes one face; ``background`` makes the canvas from the dst frame (H, W, 3) uint8 BGR."""

    composite: Callable[[np.ndarray, FaceLayer, dict[str, Any]], tuple[np.ndarray, Patch | None]]
    background: Callable[[np.ndarray], np.ndarray] = np.copy


MODES: Registry[BlendMode] = Registry("merge mode")  # in the order the merge prompt numbers them (the seed's first)


def _patch(frame: np.ndarray, layer: FaceLayer, face: np.ndarray, alpha: np.ndarray) -> Patch | None:
    return warp_to_frame(face, alpha, layer.face_from_frame, frame.shape[1], frame.shape[0])


def _matched(layer: FaceLayer, options: dict[str, Any], grey: bool = False) -> np.ndarray:
    face, dst = layer.face, layer.dst_face
    if grey:
        face = np.repeat(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
        dst = np.repeat(cv2.cvtColor(dst, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
    mask = layer.raw_mask if options["masked_hist_match"] else None
    return hist_match(face, dst, mask, options["hist_match_threshold"])


def _register(name: str, help: str, background: Callable[[np.ndarray], np.ndarray] = np.copy):
    def add(fn):
        MODES.register(name, help)(BlendMode(fn, background))
        return fn
    return add


def _pasted(frame: np.ndarray, patch: Patch | None, blend=overlay) -> tuple[np.ndarray, Patch | None]:
    """Blend in place: the merger hands modes its own working copy of the frame."""
    return (frame if patch is None else blend(frame, patch, inplace=True)), patch


@_register("overlay", "the face pasted through the mask")
def overlay_mode(frame, layer, options):
    return _pasted(frame, _patch(frame, layer, layer.face, layer.alpha))


@_register("hist-match", "overlay after matching the face's histogram to the dst face's")
def hist_match_mode(frame, layer, options):
    return _pasted(frame, _patch(frame, layer, _matched(layer, options), layer.alpha))


@_register("hist-match-bw", "hist-match with the whole frame in grey, for black-and-white footage",
           background=_grey)
def hist_match_bw_mode(frame, layer, options):
    """For black-and-white footage: the whole frame in grey, the face in grey matched to the grey dst face."""
    return _pasted(frame, _patch(frame, layer, _matched(layer, options, grey=True), layer.alpha))


@_register("seamless", "Poisson blend")
def seamless_mode(frame, layer, options):
    return _pasted(frame, _patch(frame, layer, layer.face, layer.alpha), seamless)


@_register("raw-rgb", "the predicted square unmasked")
def raw_rgb_mode(frame, layer, options):
    """The whole predicted square, unmasked."""
    return _pasted(frame, _patch(frame, layer, layer.face, np.ones_like(layer.alpha)))


@_register("raw-predict", "the predicted face on black (a layer for an editor)", background=np.zeros_like)
def raw_predict_mode(frame, layer, options):
    """The predicted square on black."""
    return _pasted(frame, _patch(frame, layer, layer.face, np.ones_like(layer.alpha)))


@_register("raw-mask", "the mask on black (a layer for an editor)", background=np.zeros_like)
def raw_mask_mode(frame, layer, options):
    """The mask, white on black."""
    return _pasted(frame, _patch(frame, layer, np.ones_like(layer.face), layer.alpha))


@_register("seamless-hist-match", "seamless after hist-match")
def seamless_hist_match_mode(frame, layer, options):
    return _pasted(frame, _patch(frame, layer, _matched(layer, options), layer.alpha), seamless)
