"""The measures `facelab bench quality` reports, on real faces: SSIM and PSNR inside the face mask, sharpness
(high-frequency energy against real faces), and the landmarks and hull masks in the model's square."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facelab.io.faceimage import list_faces, read_face
from facelab.score.reconstruction import hull_masks, model_faces, model_landmarks, psnr_images, ssim_images
from facelab.score.sharpness import high_frequency_energy, sharpness_ratio


@pytest.fixture(scope="module")
def man(tiny):
    """(faces (N, 64, 64, 3) uint8, masks (N, 64, 64)) of the dst man at the demo model's size."""
    pairs = [read_face(p) for p in list_faces(tiny.ws.aligned("dst"))]
    images, metas = [p[0] for p in pairs], [p[1] for p in pairs]
    faces = model_faces(images, metas, "full", 64)
    return faces, hull_masks(model_landmarks(metas, "full", 64), 64)


def blurred(faces: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in faces])


def test_landmarks_in_the_files_own_square_are_its_landmarks(tiny):
    image, meta = read_face(list_faces(tiny.ws.aligned("dst"))[0])
    assert model_landmarks([meta], meta.face_type, meta.image_size)[0] == pytest.approx(meta.landmarks, abs=1e-6)
    mask = hull_masks(model_landmarks([meta], "full", 64), 64)[0]
    assert mask.shape == (64, 64) and mask[32, 32] == 1.0 and mask[0, 0] == 0.0  # the face, not the corners


def test_ssim_in_the_mask(man):
    faces, masks = man
    assert ssim_images(faces, faces, masks) == pytest.approx(np.ones(len(faces)), abs=1e-6)
    # With the whole square as the mask it is the plain SSIM (every window counts at 64 px).
    assert ssim_images(faces, blurred(faces, 1.5), np.ones(masks.shape)) == pytest.approx(
        ssim_images(faces, blurred(faces, 1.5)), abs=1e-5)
    soft, hard = ssim_images(faces, blurred(faces, 1.0), masks), ssim_images(faces, blurred(faces, 2.5), masks)
    assert np.all(hard < soft) and np.all(soft < 0.99)
    # Whatever happens outside the face does not count.
    background = faces.copy()
    background[masks == 0] = 0
    assert ssim_images(faces, background, masks).min() > ssim_images(faces, background).max() + 0.1
    assert math.isnan(ssim_images(faces[:1], faces[:1], np.zeros_like(masks[:1]))[0])


def test_psnr_in_the_mask(man):
    faces, masks = man
    hard = (masks > 0.999).astype(np.float64)
    brighter = faces.copy()
    brighter[hard > 0] = np.minimum(brighter[hard > 0].astype(int) + 10, 255).astype(np.uint8)
    exact = np.all(faces[hard > 0] <= 245)  # no pixel clipped: every masked value is 10 levels off
    psnr = psnr_images(faces, brighter, hard)
    if exact:
        assert psnr == pytest.approx(np.full(len(faces), 10 * np.log10(255 ** 2 / 100)))
    assert np.all(np.isinf(psnr_images(faces, faces, masks)))
    background = faces.copy()
    background[masks == 0] = 0
    assert np.all(np.isinf(psnr_images(faces, background, (masks > 0.999).astype(float))))
    assert np.all(psnr_images(faces, blurred(faces, 2.5), masks) < psnr_images(faces, blurred(faces, 1.0), masks))


def test_sharpness(man):
    faces, masks = man
    assert sharpness_ratio(faces, masks, faces, masks) == pytest.approx(1.0)
    ratios = [sharpness_ratio(blurred(faces, s), masks, faces, masks) for s in (0.7, 1.5, 3.0)]
    assert 1.0 > ratios[0] > ratios[1] > ratios[2] > 0.0
    assert ratios[1] < 0.5  # a blur that wipes out eyelashes and pores leaves well under half the detail
    flat = np.full_like(faces, 128)
    assert high_frequency_energy(flat, masks) == pytest.approx(np.zeros(len(faces)))
    assert math.isnan(sharpness_ratio(faces, masks, flat, masks))
    with pytest.raises(ValueError):
        high_frequency_energy(faces, masks[:, :32])
