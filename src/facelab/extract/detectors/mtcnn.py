"""MTCNN (Zhang et al. 2016, "Joint face detection and alignment using multi-task cascaded convolutional
networks"): a 3-stage cascade, own PyTorch code loading the weights shipped in ``facenet-pytorch``.

Stage nets take RGB scaled to (x - 127.5) / 128. The weights were ported from the original Caffe model,
which saw images transposed; their fully connected layers therefore flatten features in (W, H, C) order.
Boxes are regressed as offsets in units of the box's width/height: (x0, y0, x1, y1).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from facelab.errors import ModelError
from facelab.extract.detectors import BoxFit, Detection, shrink_to
from facelab.geometry.boxes import nms


# -- networks ------------------------------------------------------------------------------------------------


def _conv(name: str, cin: int, cout: int, k: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{name}", nn.Conv2d(cin, cout, k)), (f"prelu{name}", nn.PReLU(cout))]


class PNet(nn.Module):
    """Proposal net, fully convolutional: (N, 3, H, W) → offsets (N, 4, H', W'), face prob (N, H', W');
    cell (x, y) of the output sees the 12 × 12 input window at (2x, 2y)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), 1)[:, 1]


class RNet(nn.Module):
    """Refine net: (N, 3, 24, 24) crops → offsets (N, 4), face prob (N,)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), 1)[:, 1]


class ONet(nn.Module):
    """Output net: (N, 3, 48, 48) crops → offsets (N, 4), face prob (N,), five points (N, 10) as
    fractions of the box: x0..x4 then y0..y4."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = nn.functional.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), torch.softmax(self.dense6_1(x), 1)[:, 1], self.dense6_3(x)


def weights_dir() -> Path:
    """The folder holding facenet-pytorch's pnet.pt / rnet.pt / onet.pt (found without importing it)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the MTCNN weights are not installed",
                         fix="run `pip install --no-deps facenet-pytorch==2.6.0` (or ./run.sh setup)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_net(net: nn.Module, path: Path) -> nn.Module:
    """Load a plain state_dict (never pickle code) with every key matching; ModelError naming the file."""
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    except (OSError, RuntimeError) as err:
        raise ModelError(f"cannot load MTCNN weights ({err})", path=path,
                         fix="reinstall: pip install --force-reinstall --no-deps facenet-pytorch==2.6.0") from None
    return net.eval()


# -- box helpers (pure) ----------------------------------------------------------------------------------------


def pyramid_scales(height: int, width: int, min_face: float, factor: float = 0.709) -> list[float]:
    """Image scales at which a face of ``min_face`` px and larger ones fill PNet's 12 px window."""
    scale = 12.0 / min_face
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply (N, 4) offsets (in box widths/heights) to (N, 4) boxes."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, 1)
    return boxes + offsets * size


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow (N, 4) boxes to squares about their centres (side = the longer side)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([centre - half, centre + half], 1)


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) resized crops of (N, 4) boxes; outside the image counts as black."""
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
        if x1 <= x0 or y1 <= y0:
            continue
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


# -- detector --------------------------------------------------------------------------------------------------


class Mtcnn:
    """The seed's "MT" detector: P-Net proposals over an image pyramid, refined by R-Net then O-Net."""

    name = "mtcnn"
    box_fit = BoxFit(dx=-0.013, dy=-0.17, width=0.985, height=1.307)

    def __init__(self, device: object = "cpu", min_face: int = 40, thresholds=(0.6, 0.7, 0.9),
                 max_side: int = 1280):
        self.device = torch.device(str(device))
        self.min_face, self.thresholds, self.max_side = min_face, thresholds, max_side
        folder = weights_dir()
        self.pnet = load_net(PNet(), folder / "pnet.pt").to(self.device)
        self.rnet = load_net(RNet(), folder / "rnet.pt").to(self.device)
        self.onet = load_net(ONet(), folder / "onet.pt").to(self.device)

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float on the device, scaled as the nets were trained."""
        t = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(0, 3, 1, 2).float()
        return (t - 127.5) * 0.0078125

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        if self.device.type != "cpu":
            return self._detect(frame_bgr)
        # The nets are tiny: on the CPU, splitting each layer over threads costs more than it saves, and on a
        # busy machine OpenMP's waiting threads made detection 5-10x slower. One thread for the call only.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._detect(frame_bgr)
        finally:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def _detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        rgb, shrink = shrink_to(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB), self.max_side)
        boxes = self._propose(rgb)
        if len(boxes):
            boxes = self._refine(rgb, boxes)
        if not len(boxes):
            return []
        boxes, scores, points = self._output(rgb, boxes)
        return [Detection(tuple(float(v) for v in boxes[i] / shrink), float(scores[i]), points[i] / shrink)
                for i in range(len(boxes))]

    def _propose(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        found = []
        for scale in pyramid_scales(height, width, self.min_face):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            offsets, prob = self.pnet(self._tensor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)[None]))
            prob, offsets = prob[0].cpu().numpy(), offsets[0].cpu().numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys, xs, ys], 1) * 2.0 + [0, 0, 12, 12]
            boxes = np.concatenate([cells / scale, prob[ys, xs, None], offsets[:, ys, xs].T], 1)
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        return np.concatenate([square(regress(boxes[:, :4], boxes[:, 5:9])), boxes[:, 4:5]], 1)

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        offsets, prob = self.rnet(self._tensor(crops(rgb, boxes[:, :4], 24)))
        prob, offsets = prob.cpu().numpy(), offsets.cpu().numpy()
        keep = prob >= self.thresholds[1]
        boxes, prob, offsets = boxes[keep, :4], prob[keep], offsets[keep]
        pick = nms(boxes, prob, 0.7)
        return np.concatenate([square(regress(boxes[pick], offsets[pick])), prob[pick, None]], 1)

    def _output(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        offsets, prob, points = self.onet(self._tensor(crops(rgb, boxes[:, :4], 48)))
        prob, offsets, points = prob.cpu().numpy(), offsets.cpu().numpy(), points.cpu().numpy()
        keep = prob >= self.thresholds[2]
        boxes, prob, offsets, points = boxes[keep, :4], prob[keep], offsets[keep], points[keep]
        size = boxes[:, 2:] - boxes[:, :2]
        points = np.stack([points[:, :5], points[:, 5:]], 2) * size[:, None] + boxes[:, None, :2]
        boxes = regress(boxes, offsets)
        pick = nms(boxes, prob, 0.7, mode="min")
        return boxes[pick], prob[pick], points[pick]
