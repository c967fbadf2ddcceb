"""The extract step's options, declared once (CLI flags, prompts, web forms and validation come from here)."""

from __future__ import annotations

from facelab.device import DEVICE_OPTION
from facelab.extract.detectors import DETECTORS
from facelab.options import Option
from facelab.types import FaceType

EXTRACT_OPTIONS = [
    Option("detector", "retinaface", "Face detector: retinaface (fast, default), mtcnn, hog (dlib, frontal "
           "faces only) or manual (rectangles from --rectangles).", choices=tuple(DETECTORS.names())),
    Option("face_type", FaceType.FULL.value, "How much of the head the aligned face shows, tightest first.",
           choices=tuple(t.value for t in FaceType)),
    Option("image_size", 256, "Side of the aligned face image in pixels.", min=64, max=2048),
    Option("image_format", "jpg", "File type of the aligned faces (png is lossless and larger).",
           choices=("jpg", "png")),
    Option("jpeg_quality", 95, "JPEG quality of the aligned faces.", min=1, max=100),
    Option("max_faces", 0, "Keep at most this many faces per frame, largest first (0: all).", min=0),
    Option("min_face_size", 0, "Ignore faces whose detected box is smaller than this many pixels.", min=0),
    Option("rotate_retry", False, "When a frame has no face, try it turned by 90°, 180° and 270°."),
    DEVICE_OPTION,
    Option("debug", None, "Write aligned_debug/ images: each frame with boxes, landmarks and the face square "
           "(not set: yes for dst, no for src).", type=bool,
           question="Write aligned_debug images? (default: yes for dst, no for src; y/n, ?:help): "),
]
