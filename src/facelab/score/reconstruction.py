"""How well does the model redraw each person? SSIM (and PSNR) of src→src and dst→dst reconstructions.

Only faces the model never trained on measure generalisation: pass held-out folders (faces extracted from
frames you kept out of ``data_src/aligned`` and ``data_dst/aligned``). On the training facesets the number is a
training score and says how far training has come, not how well the model generalises.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facelab.geometry.alignment import compose, transform_points, warp_face
from facelab.geometry.masks import hull_mask
from facelab.merge.merger import model_face_from_frame
from facelab.train.losses import ssim
from facelab.types import FaceMeta

SSIM_WINDOW = 11  # taps of the Gaussian window (sigma 1.5), as Wang et al. 2004
MAX_WINDOWS_A_SIDE = 64  # masked SSIM: enough windows for a stable mean, few enough to stay fast


def _tensors(*images: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div(255) for x in images]


def ssim_images(a: np.ndarray, b: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean SSIM (Wang et al. 2004, 11-tap Gaussian window, sigma 1.5) of (N, H, W, 3) uint8 image pairs.

    ``masks`` (N, H, W) float in [0, 1]: average the SSIM map inside the mask only, each window weighted by
    the mask at its centre (so a face is scored without its background); the windows' centres lie on a grid
    of at most ``MAX_WINDOWS_A_SIDE`` a side (every window of faces up to 74 px, every second one at 128 px).
    nan for an empty mask.
    """
    ta, tb = _tensors(a, b)
    if masks is None:
        return ssim(ta, tb).numpy().astype(np.float64)
    masks = np.asarray(masks, np.float64)
    if masks.shape != a.shape[:3]:
        raise ValueError(f"masks {masks.shape} do not match images {a.shape}")
    half = SSIM_WINDOW // 2
    stride = -(-(min(a.shape[1:3]) - 2 * half) // MAX_WINDOWS_A_SIDE)
    out = np.empty(len(a), np.float64)
    for i in range(len(a)):
        # The map from the one SSIM implementation: every window, cut out as its own 11x11 image, scores
        # exactly the map's value at that window's centre.
        pa, pb = (F.unfold(t[i:i + 1], SSIM_WINDOW, stride=stride)[0].T
                  .reshape(-1, t.shape[1], SSIM_WINDOW, SSIM_WINDOW) for t in (ta, tb))
        values = ssim(pa, pb, size=SSIM_WINDOW).numpy().astype(np.float64)
        rows = np.arange(half, masks.shape[1] - half, stride)
        cols = np.arange(half, masks.shape[2] - half, stride)
        weight = masks[i][np.ix_(rows, cols)].reshape(-1)
        out[i] = float((values * weight).sum() / weight.sum()) if weight.sum() > 0 else np.nan
    return out


def psnr_images(a: np.ndarray, b: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) peak signal-to-noise ratio in dB (peak 255) of (N, H, W, 3) uint8 pairs inside (N, H, W) masks:
    10·log10(255² / MSE), the MSE over the masked pixels and all channels. inf for identical faces."""
    a, b, masks = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(masks, np.float64)
    if a.shape != b.shape or masks.shape != a.shape[:3]:
        raise ValueError(f"need two (N, H, W, 3) images and (N, H, W) masks, got {a.shape}, {b.shape}, {masks.shape}")
    weight = masks.sum(axis=(1, 2)) * a.shape[-1]
    mse = ((a - b) ** 2 * masks[..., None]).sum(axis=(1, 2, 3)) / np.maximum(weight, 1e-12)
    with np.errstate(divide="ignore"):
        return np.where(weight > 0, 10 * np.log10(255.0 ** 2 / mse), np.nan)


def model_landmarks(metas: Sequence[FaceMeta], face_type: str, size: int) -> np.ndarray:
    """(N, 68, 2) each face's landmarks in the model's square (the one ``model_faces`` cuts), (x, y) pixels."""
    out = np.empty((len(metas), 68, 2), np.float64)
    for i, meta in enumerate(metas):
        out[i] = transform_points(meta.source_landmarks, model_face_from_frame(meta, face_type, size))
    return out


def hull_masks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) float32 landmark-hull masks of (N, 68, 2) landmarks in a size² square."""
    return np.stack([hull_mask(points, size, size) for points in landmarks]) if len(landmarks) else \
        np.zeros((0, size, size), np.float32)


def model_faces(images: Sequence[np.ndarray], metas: Sequence[FaceMeta], face_type: str, size: int) -> np.ndarray:
    """(N, size, size, 3) uint8: aligned faces re-cut to the model's face type and resolution.

    Each face file's image is warped from its own aligned square (``meta.image_from_face`` takes it back to
    the frame, ``model_face_from_frame`` into the model's square), so no frame is needed.
    """
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, (image, meta) in enumerate(zip(images, metas)):
        scale = image.shape[1] / meta.image_size  # a file saved at another size than its metadata says
        frame_from_file = np.asarray(meta.image_from_face) @ np.diag([1 / scale, 1 / scale, 1.0])
        out[i] = warp_face(image, compose(model_face_from_frame(meta, face_type, size), frame_from_file), size)
    return out


@torch.no_grad()
def reconstruct(model: torch.nn.Module, faces: np.ndarray, side: str, device: torch.device,
                batch_size: int = 16) -> np.ndarray:
    """The model's own reconstruction of ``faces`` (N, R, R, 3) uint8 BGR of person ``side`` ("src" or "dst"):
    (N, R, R, 3) uint8. Runs in eval mode and restores the model's mode."""
    key = f"{side}_{side}"
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(faces), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(faces[start:start + batch_size])).to(device)
            x = x.permute(0, 3, 1, 2).float().div(255)
            y = model.forward_train(x, x, swap=False)[key]  # both inputs the same person: we read one side
            parts.append((y.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, *faces.shape[1:]), np.uint8)
