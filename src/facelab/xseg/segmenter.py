"""A saved XSeg ready to predict: aligned faces of any size in, masks of the same size out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from facelab.device import resolve_devices
from facelab.errors import InputError, ModelError
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.xseg.net import XSegNet, build_net
from facelab.xseg.options import MODEL_NAME, xseg_options

log = logging.getLogger(__name__)
XSEG_FOLDER = "xseg"  # inside the workspace's model/: beside the swap models, but not one of them


def xseg_folder(model_dir: Path) -> Path:
    """Where XSeg lives: MODEL_DIR/xseg (the swap models' `find_models` and `merge` never see it there)."""
    return Path(model_dir) / XSEG_FOLDER


def saved_options(files: ModelFiles) -> dict:
    """The options XSeg was saved with, checked like any user's (a model folder may come from a stranger)."""
    return xseg_options(checkpoint.load_options(files))


def predict_masks(net: XSegNet, faces: np.ndarray, device: torch.device | str = "cpu",
                  batch_size: int = 16) -> np.ndarray:
    """(N, R, R) float32 [0, 1] masks (1 = face) for ``faces`` (N, R, R, 3) uint8 BGR at the net's resolution."""
    out = []
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(faces), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(faces[start : start + batch_size])).to(device)
            logits = net(chunk.permute(0, 3, 1, 2).float().div(255))  # a channels-last view: no copy
            out.append(torch.sigmoid(logits)[:, 0].float().cpu().numpy())
    net.train(was_training)
    r = net.resolution
    return np.concatenate(out) if out else np.zeros((0, r, r), np.float32)


@dataclass
class Segmenter:
    net: XSegNet
    device: torch.device
    iteration: int

    def __post_init__(self) -> None:
        self.net.to(self.device, memory_format=torch.channels_last).eval()  # NHWC: the faces' layout, faster on CPUs

    @property
    def resolution(self) -> int:
        return self.net.resolution

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> "Segmenter":
        """The XSeg saved in ``folder`` (MODEL_DIR/xseg); ModelError when there is none."""
        files = ModelFiles(Path(folder), MODEL_NAME)
        if not files.exists():
            raise ModelError("no trained XSeg here", path=folder, fix="train one with `facelab xseg train`")
        dev = resolve_devices(device)[0]
        net = build_net(saved_options(files))
        iteration = checkpoint.load_weights(files, net, dev)
        log.info("loaded XSeg (iteration %d) on %s", iteration, dev)
        return cls(net, dev, iteration)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, S, S) float32 [0, 1] masks for aligned faces (N, S, S, 3) uint8 BGR of any side S (resized to the
        net's resolution and back)."""
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2] or faces.dtype != np.uint8:
            raise InputError(f"faces must be (N, S, S, 3) uint8 BGR, got {faces.shape} {faces.dtype}")
        if faces.shape[1] == self.resolution:
            return predict_masks(self.net, faces, self.device)
        side = faces.shape[1]
        return np.stack(self.predict_each(list(faces))) if len(faces) else np.zeros((0, side, side), np.float32)

    def predict_each(self, faces: list[np.ndarray]) -> list[np.ndarray]:
        """The masks of aligned faces of different sides (each (S, S, 3) uint8 BGR → (S, S) float32), in batches."""
        r = self.resolution
        for face in faces:
            if face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1] or face.dtype != np.uint8:
                raise InputError(f"a face must be (S, S, 3) uint8 BGR, got {face.shape} {face.dtype}")
        at_r = [f if f.shape[0] == r else cv2.resize(f, (r, r), interpolation=cv2.INTER_AREA if f.shape[0] > r
                                                     else cv2.INTER_LINEAR) for f in faces]
        masks = predict_masks(self.net, np.stack(at_r), self.device) if faces else []
        return [m if f.shape[0] == r else cv2.resize(m, (f.shape[0],) * 2, interpolation=cv2.INTER_LINEAR)
                for f, m in zip(faces, masks)]


def load_for_masks(model_dir: Path, mask_names: list[str], device: str = "cpu") -> Segmenter | None:
    """The workspace's XSeg when a merge mask of ``mask_names`` uses it (``seg-prd``, ``seg-dst``) and one is
    trained in MODEL_DIR/xseg; else None (``seg-dst`` then needs masks applied to the dst faces)."""
    if not any("seg-" in str(name) for name in mask_names):
        return None
    folder = xseg_folder(model_dir)
    if not ModelFiles(folder, MODEL_NAME).exists():
        return None
    return Segmenter.load(folder, device)
