"""A tiny real workspace for the score tests: 6 frames of the dst demo video (a man) with their aligned faces,
a src faceset of 3 faces from the src demo video (a woman), and "merged" frames that are the dst frames
themselves — an unswapped video, which must score as not swapped."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.extract.frames import video_frames
from facelab.extract.runner import extract_folder, extract_video
from facelab.workspace import Workspace, create

DST_FRAMES = 6
SRC_FRAMES = ("00001.png", "00120.png", "00240.png")
EXTRACT = dict(detector="retinaface", face_type="full", image_size=128, image_format="jpg", jpeg_quality=95,
               max_faces=1, min_face_size=0, rotate_retry=False, device="cpu")


def first_frames(video: Path, count: int) -> list[np.ndarray]:
    out = []
    for frame in video_frames(video):
        if len(out) == count:
            break
        out.append(frame.image)
    return out


@pytest.fixture(scope="session")
def src_first_frame(src_video) -> np.ndarray:
    """The src woman, head turned about 10° toward the image's left."""
    return first_frames(src_video, 1)[0]


@pytest.fixture(scope="session")
def dst_first_frames(dst_video) -> list[np.ndarray]:
    return first_frames(dst_video, 3)


@dataclass(frozen=True)
class TinyWorkspace:
    ws: Workspace

    def copy_to(self, root: Path) -> Workspace:
        """A private copy (a test may change its merged frames)."""
        shutil.copytree(self.ws.root, root)
        return Workspace(root)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, src_video, dst_video) -> TinyWorkspace:
    ws = create(tmp_path_factory.mktemp("score") / "ws")
    for i, image in enumerate(first_frames(dst_video, DST_FRAMES), 1):
        cv2.imwrite(str(ws.frames("dst") / f"{i:05d}.png"), image)
        cv2.imwrite(str(ws.merged / f"{i:05d}.png"), image)
    extract_folder(ws.frames("dst"), ws.aligned("dst"), **EXTRACT)
    extract_video(src_video, ws.aligned("src"), only=SRC_FRAMES, **EXTRACT)
    return TinyWorkspace(ws)
