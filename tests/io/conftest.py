"""A real aligned face (the single-face demo photo, extracted once per session) for the face-file tests."""

from __future__ import annotations

import cv2
import pytest


@pytest.fixture(scope="session")
def real_face(single_face_jpg):
    """(128 px full-face image (H, W, 3) uint8 BGR, FaceMeta) of the demo photo's face."""
    from facelab.extract import extract_faces

    faces = extract_faces(cv2.imread(str(single_face_jpg)), image_size=128, source_filename="00001.png")
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(params=[".jpg", ".png"])
def face_file(request, real_face, tmp_path):
    """The real face written as ``tmp_path/00001_0.jpg`` or ``.png`` with its metadata."""
    from facelab.io.faceimage import write_face

    path = tmp_path / f"00001_0{request.param}"
    write_face(path, *real_face)
    return path
