"""Training losses against independent references (NumPy + OpenCV) on real face images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facelab.train import losses


@pytest.fixture(scope="module")
def face(single_face_jpg) -> torch.Tensor:
    """A real photo's 96×96 centre crop: (1, 3, 96, 96) float32 in [0, 1], BGR."""
    image = cv2.imread(str(single_face_jpg))
    h, w = image.shape[:2]
    side = min(h, w)
    crop = cv2.resize(image[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2], (96, 96),
                      interpolation=cv2.INTER_AREA)
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s SSIM with an 11-tap σ 1.5 Gaussian, valid windows only, written with OpenCV (H, W) floats."""
    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_ssim_matches_an_opencv_reference(face):
    distorted = noisy(face, 0.1)
    ours = losses.ssim(face.double(), distorted.double()).item()
    a, b = face[0].double().numpy(), distorted[0].double().numpy()
    ref = np.mean([reference_ssim(a[c], b[c]) for c in range(3)])
    assert ours == pytest.approx(ref, abs=1e-6)


def test_dssim_is_zero_for_equal_images_and_grows_with_noise(face):
    assert losses.dssim(face, face).item() == pytest.approx(0, abs=1e-6)
    values = [losses.dssim(face, noisy(face, s)).item() for s in (0.02, 0.05, 0.1, 0.2)]
    assert values == sorted(values) and 0 < values[0] and values[-1] < 0.5


def test_ssim_refuses_a_window_larger_than_the_image():
    with pytest.raises(ValueError, match="window"):
        losses.ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), size=11)


@pytest.mark.parametrize("resolution, window", [(64, 5), (128, 11), (256, 23)])
def test_dssim_window_follows_resolution(resolution, window):
    assert losses.dssim_window(resolution) == window


def test_gaussian_blur_keeps_flat_regions_and_spreads_edges():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:24, 8:24] = 1
    y = losses.gaussian_blur(x, 2.0)
    assert y[0, 0, 16, 16].item() == pytest.approx(1, abs=1e-4)
    assert 0.3 < y[0, 0, 16, 8].item() < 0.7  # half way across the edge
    assert y.sum().item() == pytest.approx(x.sum().item(), rel=1e-3)  # blur moves mass, keeps it


def test_loss_mask_widens_the_hull_softly():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    radius = ((xx - 31.5) ** 2 + (yy - 31.5) ** 2).sqrt()[None, None]
    mask = (radius < 20).float()  # a round hull
    w = losses.loss_mask(mask, 64)
    assert 0 <= w.min() and w.max() <= 1
    assert w[radius < 18].min() == 1 and w[radius < 20].min() > 0.9  # the hull counts fully up to its border
    assert w[(radius > 21) & (radius < 23)].min() > 0.1  # and a soft band outside it


def test_border_weight_zeroes_the_edges():
    w = losses.border_weight(64)
    assert w.shape == (1, 1, 64, 64)
    assert w[0, 0, 0].abs().max() == 0 and w[0, 0, :, 3].abs().max() == 0
    assert w[0, 0, 32, 32] == 1 and w[0, 0, 8:56, 8:56].min() == 1


def test_masked_stats_match_numpy(face):
    mask = torch.zeros(1, 1, 96, 96)
    mask[..., 20:70, 30:80] = 1
    mean, std = losses.masked_stats(face, mask)
    region = face[0, :, 20:70, 30:80].reshape(3, -1).numpy()
    np.testing.assert_allclose(mean[0].numpy(), region.mean(1), rtol=1e-4)
    np.testing.assert_allclose(std[0].numpy(), region.std(1), rtol=1e-3)


def test_style_loss_compares_colour_statistics_inside_the_mask(face):
    mask = torch.zeros(1, 1, 96, 96)
    mask[..., 24:72, 24:72] = 1
    assert losses.style_loss(face, face, mask).item() == pytest.approx(0, abs=1e-6)
    outside_changed = face.clone()
    outside_changed[..., :10, :] = 0
    assert losses.style_loss(outside_changed, face, mask).item() == pytest.approx(0, abs=1e-6)
    tinted = (face + torch.tensor([0.2, 0.0, -0.1]).view(1, 3, 1, 1)).clamp(0, 1).requires_grad_()
    loss = losses.style_loss(tinted, face, mask)
    assert loss.item() > 1e-3
    loss.backward()
    stepped = tinted.detach() - 0.02 * tinted.grad / tinted.grad.abs().max()
    assert losses.style_loss(stepped, face, mask) < loss  # its gradient leads toward the target's colours


def test_image_loss_counts_only_weighted_pixels(face):
    weight = torch.zeros(1, 1, 96, 96)
    weight[..., 24:72, 24:72] = 1
    other = face.clone()
    other[..., :20, :] = 1 - other[..., :20, :]  # differ only outside the weight
    assert losses.image_loss(other, face, weight, pixel=False, window=11).item() == pytest.approx(0, abs=1e-6)
    shifted = (face + 0.1).clamp(0, 1)
    pixel = losses.image_loss(shifted, face, weight, pixel=True, window=11)
    assert pixel.item() == pytest.approx(50 * losses.mse(shifted * weight, face * weight).item(), rel=1e-6)
    assert losses.image_loss(shifted, face, weight, pixel=False, window=11) > 0
