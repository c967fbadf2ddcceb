"""Putting an aligned face back into its frame: warp over the face's box only, alpha overlay, Poisson blend.

Images: frames (H, W, 3) uint8 BGR; faces (S, S, 3) float32 BGR in [0, 1]; alphas float32 in [0, 1].
``face_from_frame`` is the (2, 3) frame → aligned-face matrix (``facelab.geometry.alignment`` conventions).
Every compositing function here changes only pixels whose alpha is > 0: the rest of the frame stays
byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facelab.geometry.alignment import compose, face_square_in_frame, unwarp_face


@dataclass(frozen=True)
class Patch:
    """A face warped into frame space over the box ``[y0:y0+h, x0:x0+w]`` of the frame.

    ``face`` (h, w, 3) float32 [0, 1]; ``alpha`` (h, w) float32 [0, 1].
    """

    x0: int
    y0: int
    face: np.ndarray
    alpha: np.ndarray

    @property
    def rows(self) -> slice:
        return slice(self.y0, self.y0 + self.alpha.shape[0])

    @property
    def cols(self) -> slice:
        return slice(self.x0, self.x0 + self.alpha.shape[1])


def square_box(face_from_frame: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) integer frame box holding the aligned ``size`` square, clipped to the frame; None if outside."""
    corners = face_square_in_frame(face_from_frame, size)
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None


def warp_to_frame(face: np.ndarray, alpha: np.ndarray, face_from_frame: np.ndarray,
                  width: int, height: int) -> Patch | None:
    """Warp an aligned face (S, S, 3) and its alpha (S, S) into the frame, computing only the face's box.

    The box is then trimmed to where alpha > 0. Returns None when no face pixel lands in the frame.
    """
    box = square_box(face_from_frame, alpha.shape[0], width, height)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    face_from_box = compose(face_from_frame, np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))
    a = unwarp_face(alpha, face_from_box, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return None
    r0, r1, c0, c1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Linear: callers hand in faces already resized to about their size in the frame (a near 1:1 warp).
    f = unwarp_face(face, face_from_box, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return Patch(x0 + int(c0), y0 + int(r0), np.clip(f[r0:r1, c0:c1], 0.0, 1.0), np.clip(a[r0:r1, c0:c1], 0.0, 1.0))


def overlay(frame: np.ndarray, patch: Patch, inplace: bool = False) -> np.ndarray:
    """alpha · face + (1 − alpha) · frame inside the patch where alpha > 0; the rest unchanged.

    Returns a new frame, or ``frame`` itself changed when ``inplace`` (saves copying big frames).
    """
    out = frame if inplace else frame.copy()
    region = out[patch.rows, patch.cols]
    face = np.rint(patch.face * 255.0).astype(np.uint8)
    mixed = cv2.blendLinear(face, region, patch.alpha, 1.0 - patch.alpha)
    np.copyto(region, mixed, where=(patch.alpha > 0)[..., None])
    return out


def seamless(frame: np.ndarray, patch: Patch, inplace: bool = False, max_side: int = 160) -> np.ndarray:
    """Poisson blend (Pérez et al. 2003) of the face over alpha > 0, then alpha overlay of the blended face so a
    feathered mask still feathers. Only the patch's box (plus a 2-px margin) is solved.

    The Poisson solution is the face plus a *harmonic* correction (it has no gradient of its own), and a
    harmonic field is smooth: so the correction is solved with OpenCV's ``seamlessClone`` on a copy at most
    ``max_side`` px a side and upsampled — the same look at a fraction of the cost for big faces.
    """
    margin = 2
    h, w = patch.alpha.shape
    height, width = frame.shape[:2]
    # A crop with a margin around the box; mirrored where the box touches the frame edge.
    top, left = patch.y0 - margin, patch.x0 - margin
    bottom, right = patch.y0 + h + margin, patch.x0 + w + margin
    crop = frame[max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
    crop = cv2.copyMakeBorder(crop, max(-top, 0), max(bottom - height, 0), max(-left, 0), max(right - width, 0),
                              cv2.BORDER_REFLECT)
    source = crop.astype(np.float32)
    source[margin:margin + h, margin:margin + w] = patch.face * 255.0
    inside = np.zeros(crop.shape[:2], np.uint8)
    inside[margin:margin + h, margin:margin + w] = patch.alpha > 0
    scale = min(1.0, max_side / max(crop.shape[:2]))
    size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
    small_source = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
    small_crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(inside, size, interpolation=cv2.INTER_NEAREST) * 255
    mask[[0, -1], :] = 0  # the solver needs a boundary inside the image
    mask[:, [0, -1]] = 0
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return overlay(frame, patch, inplace)
    bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    # seamlessClone centres the mask's bounding box on this point (rounding down), so put it back exactly.
    centre = (int(xs.min() + bw // 2), int(ys.min() + bh // 2))
    source_u8 = np.clip(np.rint(small_source), 0, 255).astype(np.uint8)
    cloned = cv2.seamlessClone(source_u8, small_crop, mask, centre, cv2.NORMAL_CLONE)
    correction = cv2.resize(cloned.astype(np.float32) - source_u8, (crop.shape[1], crop.shape[0]),
                            interpolation=cv2.INTER_LINEAR)
    blended = (source + correction)[margin:margin + h, margin:margin + w]
    return overlay(frame, Patch(patch.x0, patch.y0, np.clip(blended / 255.0, 0.0, 1.0), patch.alpha), inplace)
