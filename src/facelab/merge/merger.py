"""Merging one frame: every predicted face is masked, recoloured and blended back, then labelled as synthetic.

``merge_frame`` is the per-frame maths (arrays in, arrays out); ``facelab.merge.runner`` runs it over a folder.
Work happens per face in a square of side S = the face's size in the frame (at least the model's resolution,
at most ``MAX_WORK_SIZE``), so masks and colours are computed at the detail the frame shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from facelab import provenance
from facelab.geometry import alignment, colour, masks
from facelab.merge.enhance import FaceEnhancer
from facelab.merge.masks import MaskInputs, build_mask, resolve_mask_name
from facelab.merge.modes import MODES, FaceLayer
from facelab.types import FaceMeta
from facelab.xseg.stored import has_mask

MAX_WORK_SIZE = 1024
DEBUG_TILE = 160


@dataclass(frozen=True)
class PredictedFace:
    """A dst face and the model's answer for it.

    ``face_from_frame`` (2, 3) maps the frame to the model's aligned square of side R; ``predicted`` (R, R, 3)
    float32 BGR [0, 1]; ``learned_prd`` / ``learned_dst`` (R, R) float32 or None. ``super_resolved``: the
    prediction through super resolution at its work size S (``with_super_resolution``), kept by whoever merges the
    same face again (the merge tuner); None to run the enhancer when merging. ``seg_dst``: the segmenter's (S, S)
    float32 mask of the dst face at work size (``segment_dst``, for a whole batch at once); None to segment when
    merging.
    """

    meta: FaceMeta
    face_from_frame: np.ndarray
    predicted: np.ndarray
    learned_prd: np.ndarray | None = None
    learned_dst: np.ndarray | None = None
    super_resolved: np.ndarray | None = None
    seg_dst: np.ndarray | None = None


@dataclass
class MergedFrame:
    """``image`` (H, W, 3) uint8 BGR (or (H, W, 4) BGRA with export_alpha), ``mask`` (H, W) uint8 (255 = new face),
    ``debug`` (h, w, 3) uint8 panel when asked for, ``info`` one line per face."""

    image: np.ndarray
    mask: np.ndarray
    debug: np.ndarray | None = None
    info: list[str] = field(default_factory=list)


def model_face_from_frame(meta: FaceMeta, face_type: str, size: int) -> np.ndarray:
    """(2, 3) frame → the model's aligned square: the face file's own matrix rescaled when its face type is the
    model's, else re-aligned from the face's frame landmarks."""
    if meta.face_type == face_type:
        return np.asarray(meta.face_from_image, np.float64) * (size / meta.image_size)
    return alignment.face_from_landmarks(meta.source_landmarks, face_type, size)


def work_size(face_from_frame: np.ndarray, resolution: int) -> int:
    """S: the aligned square's side in frame pixels, clamped to [resolution, MAX_WORK_SIZE]."""
    scale = float(np.sqrt(abs(np.linalg.det(face_from_frame[:, :2]))))  # aligned px per frame px
    return int(min(max(round(resolution / scale), resolution), MAX_WORK_SIZE))


def work_square(frame: np.ndarray, face: PredictedFace) -> tuple[int, np.ndarray, np.ndarray]:
    """The work size S, the frame → S-square matrix and the dst face cut at S, (S, S, 3) uint8 BGR. Linear is
    enough for the dst face: it feeds colour statistics, the segmenter and the debug view; it is never pasted."""
    resolution = face.predicted.shape[0]
    size = work_size(face.face_from_frame, resolution)
    face_from_frame = face.face_from_frame * (size / resolution)
    return size, face_from_frame, alignment.warp_face(frame, face_from_frame, size, cv2.INTER_LINEAR)


def segment_dst(frames: list[np.ndarray], faces: list[list[PredictedFace]], segmenter: Any
                ) -> list[list[PredictedFace]]:
    """The faces of several frames (one list per frame) carrying the segmenter's mask of their dst face, computed
    for all of them in one batch; faces whose metadata holds an applied XSeg mask are left to read that."""
    todo = [(i, j) for i, row in enumerate(faces) for j, face in enumerate(row) if not has_mask(face.meta)]
    masks = segmenter.predict_each([work_square(frames[i], faces[i][j])[2] for i, j in todo]) if todo else []
    out = [list(row) for row in faces]
    for (i, j), mask in zip(todo, masks):
        out[i][j] = replace(faces[i][j], seg_dst=mask)
    return out


def scaled_about_centre(face_from_frame: np.ndarray, size: int, percent: float) -> np.ndarray:
    """``face_from_frame`` for pasting the face ``percent`` % bigger (negative: smaller) about the square's centre."""
    k = 1.0 + percent / 100.0
    c = size / 2.0
    shrink = np.array([[1.0 / k, 0.0, c - c / k], [0.0, 1.0 / k, c - c / k]])
    return alignment.compose(shrink, face_from_frame)


def super_resolve(face: PredictedFace, enhancer: FaceEnhancer) -> np.ndarray:
    """(S, S, 3) float32 BGR [0, 1]: the predicted face through super resolution, at its work size S."""
    size = work_size(face.face_from_frame, face.predicted.shape[0])
    return enhancer.enhance(np.rint(face.predicted * 255).astype(np.uint8), size).astype(np.float32) / 255.0


def with_super_resolution(face: PredictedFace, enhancer: FaceEnhancer) -> PredictedFace:
    """``face`` carrying its super-resolved prediction, so merging it again (other options) skips the enhancer."""
    return replace(face, super_resolved=super_resolve(face, enhancer))


def merge_frame(frame: np.ndarray, faces: list[PredictedFace], options: dict[str, Any], learns_mask: bool,
                enhancer: FaceEnhancer | None = None, debug: bool = False, segmenter: Any = None) -> MergedFrame:
    """Blend every predicted face into ``frame`` (H, W, 3) uint8 BGR with the merge ``options``.

    Pixels outside the faces' final masks are returned byte-identical (greyed by ``hist-match-bw``, black in the
    editor layers ``raw-predict``/``raw-mask``); with no face the frame is returned as is. ``segmenter``: a loaded
    XSeg for the ``seg-*`` masks (``facelab.xseg.segmenter.Segmenter``), or None.
    """
    height, width = frame.shape[:2]
    mode = MODES.get(options["mode"])
    out = mode.background(frame) if faces else frame.copy()
    alpha_total = np.zeros((height, width), np.float32)
    box = [width, height, 0, 0]  # the union of the pasted patches (x0, y0, x1, y1)
    mask_name = resolve_mask_name(options["mask"], learns_mask)
    panels, info = [], []
    for face in faces:
        layer, prediction, face_from_frame = _prepare(frame, face, options, mask_name, enhancer, segmenter)
        out, patch = mode.composite(out, layer, options)
        if patch is not None:
            region = alpha_total[patch.rows, patch.cols]
            np.maximum(region, patch.alpha, out=region)
            box = [min(box[0], patch.cols.start), min(box[1], patch.rows.start),
                   max(box[2], patch.cols.stop), max(box[3], patch.rows.stop)]
        size = layer.alpha.shape[0]
        info.append(f"face {face.meta.face_index}: work size {size} px, mask {mask_name}, "
                    f"erode {masks.kernel_px(options['erode'], size)} px, "
                    f"blur {masks.kernel_px(options['blur'], size)} px, "
                    f"colour {options['colour_transfer']}, mode {options['mode']}"
                    + ("" if patch is not None else " (outside the frame)"))
        if debug:
            panels.append((layer, prediction, face_from_frame))
    mask = np.zeros((height, width), np.uint8)
    if box[2] > box[0]:
        out = provenance.embed_watermark(out, alpha_total, box=tuple(box), inplace=True)
        rows, cols = slice(box[1], box[3]), slice(box[0], box[2])
        mask[rows, cols] = np.rint(alpha_total[rows, cols] * 255.0)
    if options["export_alpha"]:
        out = np.dstack([out, mask])
    panel = _debug_panel(panels, out[..., :3]) if debug and panels else None
    return MergedFrame(out, mask, panel, info)


def _prepare(frame: np.ndarray, face: PredictedFace, options: dict[str, Any], mask_name: str,
             enhancer: FaceEnhancer | None, segmenter: Any = None) -> tuple[FaceLayer, np.ndarray, np.ndarray]:
    """The face layer at work size S, the raw prediction resized to S and the frame → S-square matrix (for the
    debug panel)."""
    size, face_from_frame, dst_face = work_square(frame, face)
    dst_face = dst_face.astype(np.float32) / 255.0
    if options["super_resolution"] and face.super_resolved is not None:
        predicted = face.super_resolved
    elif options["super_resolution"] and enhancer is not None:  # the predicted face only, never the frame
        predicted = super_resolve(face, enhancer)
    else:
        predicted = np.clip(cv2.resize(face.predicted, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)

    def at_size(m: np.ndarray | None) -> np.ndarray | None:
        return None if m is None else cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)

    landmarks = alignment.transform_points(face.meta.source_landmarks, face_from_frame)
    raw = build_mask(mask_name, MaskInputs(size, landmarks, at_size(face.learned_prd), at_size(face.learned_dst),
                                           dst_face, predicted, face.meta, face_from_frame, segmenter,
                                           face.seg_dst))
    alpha = masks.blur(masks.erode(raw, options["erode"], size), options["blur"], size)
    recoloured = predicted
    if not options["mode"].startswith("raw"):
        recoloured = colour.COLOUR_TRANSFERS.get(options["colour_transfer"])(predicted, dst_face, raw)
        recoloured = colour.degrade_colours(recoloured, options["degrade_colour"])
    paste_from_frame = scaled_about_centre(face_from_frame, size, options["face_scale"])
    return FaceLayer(recoloured, alpha, raw, dst_face, paste_from_frame), predicted, face_from_frame


def _debug_panel(panels: list[tuple[FaceLayer, np.ndarray, np.ndarray]], result: np.ndarray) -> np.ndarray:
    """One row per face: dst face | prediction | raw mask | final mask | result, each DEBUG_TILE px square."""

    def tile(img: np.ndarray) -> np.ndarray:
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img
        img = cv2.resize(img, (DEBUG_TILE, DEBUG_TILE), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img

    rows = []
    for layer, prediction, face_from_frame in panels:
        merged = alignment.warp_face(result, face_from_frame, layer.alpha.shape[0])
        rows.append(np.hstack([tile(layer.dst_face), tile(prediction), tile(layer.raw_mask), tile(layer.alpha),
                               tile(merged)]))
    return np.vstack(rows)
