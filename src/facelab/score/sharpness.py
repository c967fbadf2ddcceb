"""How sharp is a face? Its high-frequency energy inside the face mask, and that energy relative to real faces.

A model that has learned little draws smooth, featureless faces: SSIM can still be fair (the big shapes are
right) while the detail is gone. High-frequency energy measures the detail directly:

- ``high_frequency_energy`` = mean over the mask of L², L the 3×3 Laplacian of the grey image (0-255 levels);
- ``sharpness_ratio`` = that energy of the generated faces ÷ that of real faces of the person at the same
  size: 1 = as detailed as real faces, ~0 = flat, > 1 = noisier than real faces (GAN artefacts, ringing).
"""

from __future__ import annotations

import cv2
import numpy as np


def high_frequency_energy(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) float64 mask-weighted mean squared Laplacian of (N, H, W, 3) uint8 BGR images.

    ``masks``: (N, H, W) float in [0, 1] (1 = face). A face with an empty mask scores nan.
    """
    images, masks = np.asarray(images), np.asarray(masks, np.float64)
    if images.ndim != 4 or masks.shape != images.shape[:3]:
        raise ValueError(f"need (N, H, W, 3) images and (N, H, W) masks, got {images.shape} and {masks.shape}")
    out = np.empty(len(images), np.float64)
    for i, (image, mask) in enumerate(zip(images, masks)):
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
        laplacian = cv2.Laplacian(grey, cv2.CV_64F, ksize=3, borderType=cv2.BORDER_REFLECT)
        weight = mask.sum()
        out[i] = float((laplacian ** 2 * mask).sum() / weight) if weight > 0 else np.nan
    return out


def sharpness_ratio(images: np.ndarray, masks: np.ndarray, real_images: np.ndarray, real_masks: np.ndarray) -> float:
    """Mean high-frequency energy of ``images`` ÷ that of ``real_images`` (both (N, H, W, 3) uint8, same H, W).

    nan when the real faces have no detail at all (their energy is 0).
    """
    real = float(np.nanmean(high_frequency_energy(real_images, real_masks)))
    return float(np.nanmean(high_frequency_energy(images, masks))) / real if real > 0 else float("nan")
