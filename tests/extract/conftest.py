"""Fixtures for extraction tests: insightface's 6-face photo and one shared extraction of the src video."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.extract.runner import extract_video

SETTINGS = dict(detector="retinaface", face_type="full", image_size=256, image_format="jpg", jpeg_quality=95,
                max_faces=0, min_face_size=0, rotate_retry=False, device="cpu")


@pytest.fixture
def settings() -> dict:
    """Every extract option at its default, on the CPU."""
    return dict(SETTINGS)


@pytest.fixture(scope="session")
def t1_bgr() -> np.ndarray:
    """insightface 2.1's t1.jpg (6 people, 1280×886), read from the sdist run.sh keeps in the venv."""
    tarball = Path(sys.prefix) / "share" / "insightface" / "insightface-2.1.tar.gz"
    if not tarball.is_file():
        pytest.skip(f"{tarball} missing: run ./run.sh setup (it downloads the insightface 2.1 sdist with pip)")
    with tarfile.open(tarball) as tar:
        data = tar.extractfile("insightface-2.1/insightface/data/images/t1.jpg").read()
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.fixture(scope="session")
def src_faces(tmp_path_factory, src_video):
    """Every 16th frame of the 472-frame src video extracted (streamed) to aligned JPGs: (folder, report)."""
    aligned = tmp_path_factory.mktemp("src") / "aligned"
    wanted = [f"{i:05d}.png" for i in range(1, 473, 16)]
    report = extract_video(src_video, aligned, only=wanted, **SETTINGS)
    return aligned, report
