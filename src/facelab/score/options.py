"""Options of `facelab score`, declared once (kept free of torch and cv2 so the CLI imports it cheaply)."""

from __future__ import annotations

from facelab.options import Option

SCORE_OPTIONS: tuple[Option, ...] = (
    Option("detector", "retinaface", "Face detector that re-finds the face in each merged frame.",
           choices=("retinaface", "mtcnn", "hog"), prompt="Detector"),
    Option("identity_faces", 64, "Faces per faceset (spread evenly over it) whose mean descriptor stands for the "
           "src and the dst person.", min=1, max=10000, prompt="Faces per person"),
    Option("reconstruction_faces", 32, "Faces per side for the reconstruction SSIM (spread evenly).",
           min=1, max=10000, prompt="Faces for SSIM"),
    Option("worst_frames", 6, "Worst frames shown as thumbnails in the report.", min=0, max=50,
           prompt="Worst frames shown"),
)
