"""How well does the model redraw each person? SSIM of src→src and dst→dst reconstructions.

Only faces the model never trained on measure generalisation: pass held-out folders (faces extracted from
frames you kept out of ``data_src/aligned`` and ``data_dst/aligned``). On the training facesets the number is a
training score and says how far training has come, not how well the model generalises.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from facelab.geometry.alignment import compose, warp_face
from facelab.merge.merger import model_face_from_frame
from facelab.train.losses import ssim
from facelab.types import FaceMeta


def ssim_images(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) mean SSIM (Wang et al. 2004, 11-tap Gaussian window, sigma 1.5) of (N, H, W, 3) uint8 image pairs."""
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div(255) for x in (a, b))
    return ssim(ta, tb).numpy().astype(np.float64)


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
