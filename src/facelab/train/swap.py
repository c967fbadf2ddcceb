"""The swap API merge uses: a trained model turns aligned dst faces into predicted src faces (and masks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facelab.device import resolve_devices
from facelab.errors import ModelError
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.train.models.build import build_model, model_options

log = logging.getLogger(__name__)


def checked_dst_faces(dst_faces: np.ndarray, resolution: int, face_type: str) -> np.ndarray:
    """``dst_faces`` as an array, refused unless (N, R, R, 3) uint8: what every swapper's ``predict`` takes."""
    faces = np.asarray(dst_faces)
    r = resolution
    if faces.ndim != 4 or faces.shape[1:] != (r, r, 3) or faces.dtype != np.uint8:
        raise ModelError(f"dst faces must be (N, {r}, {r}, 3) uint8 BGR, got {faces.shape} {faces.dtype}",
                         fix=f"align the faces as {face_type} at {r} px first")
    return faces


@dataclass
class Swapper:
    """A trained model ready to predict. ``resolution`` and ``face_type`` say how dst faces must be aligned."""

    model: nn.Module
    device: torch.device
    name: str
    iteration: int
    batch_size: int = 16

    @property
    def resolution(self) -> int:
        return int(self.model.resolution)

    @property
    def face_type(self) -> str:
        return str(getattr(self.model.face_type, "value", self.model.face_type))

    @property
    def learn_mask(self) -> bool:
        return bool(self.model.learn_mask)

    @classmethod
    def load(cls, model_dir: Path, model_name: str | None = None, device: str = "auto") -> "Swapper":
        """Load the model ``model_name`` saved in ``model_dir`` on ``device``: a saved name (``1_SAE``, a model
        trained on GPU 1), a model name when one such model is saved (prefixed or not), or None for the only
        model there (``checkpoint.resolve_model``)."""
        model_dir = Path(model_dir)
        model_name = checkpoint.resolve_model(model_dir, model_name)
        opts, _ = model_options(model_dir, model_name, {})
        dev = resolve_devices(device)[0]
        model = build_model(checkpoint.parse_saved_name(model_name)[0], opts)
        iteration = checkpoint.load_weights(ModelFiles(model_dir, model_name), model, dev)
        model.to(dev).eval()
        log.info("loaded %s (iteration %d) on %s", model_name, iteration, dev)
        return cls(model, dev, model_name, iteration)

    def predict(self, dst_faces: np.ndarray, masks: tuple[bool, bool] = (True, True)
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(pred_src (N, R, R, 3) float32 [0, 1] BGR, pred_src_mask (N, R, R) float32 [0, 1] or None,
        pred_dst_mask (N, R, R) or None) for ``dst_faces`` (N, R, R, 3) uint8 BGR aligned at the model's
        face type and resolution. ``masks``: whether the swap and the dst mask are wanted; the dst mask's decoder
        is skipped when it is not (the swap mask comes with the face)."""
        faces = checked_dst_faces(dst_faces, self.resolution, self.face_type)
        r = self.resolution
        parts: list[list[np.ndarray]] = [[], [], []]
        for start in range(0, len(faces), self.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(faces[start:start + self.batch_size])).to(self.device)
            with torch.inference_mode():
                outputs = self.model.swap(chunk.permute(0, 3, 1, 2).float().div(255), dst_mask=masks[1])
            for part, out in zip(parts, outputs):
                if out is not None:
                    out = out.float().clamp(0, 1).cpu().numpy()
                    part.append(out.transpose(0, 2, 3, 1) if out.shape[1] == 3 else out[:, 0])
        if not len(faces):
            empty = np.zeros((0, r, r), np.float32)
            return np.zeros((0, r, r, 3), np.float32), (empty if self.learn_mask else None), \
                (empty if self.learn_mask else None)
        return tuple(np.concatenate(p).astype(np.float32) if p else None for p in parts)  # type: ignore[return-value]
