"""A small real faceset, extracted once per session from the demo videos (src: a woman, dst: a man).

Faces are 128 px 'full' faces named like extraction names them (``<frame>_<n>.jpg``); tests get a fresh copy
of the folder so they can sort, rename and trash freely.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SRC_FRAMES = 40  # spread over the src video (472 frames): many head poses, one person
DST_FRAMES = 15  # spread over the dst video (72 frames): another person
FACE_SIZE = 128


def _frames(video: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """``count`` (frame number, BGR frame) pairs evenly spread over ``video``, decoded with PyAV."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        total = stream.frames
        wanted = set(np.linspace(0, total - 1, count).round().astype(int).tolist())
        out = []
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                out.append((i, frame.to_ndarray(format="bgr24")))
            if len(out) == len(wanted):
                break
    return out


def _write_faces(folder: Path, frame: np.ndarray, frame_name: str) -> list[Path]:
    from facelab.extract import extract_faces
    from facelab.io.faceimage import write_face

    written = []
    for face, meta in extract_faces(frame, image_size=FACE_SIZE, source_filename=frame_name):
        path = folder / f"{Path(frame_name).stem}_{meta.face_index}.jpg"
        write_face(path, face, meta)
        written.append(path)
    return written


@dataclass(frozen=True)
class FacesetCache:
    folder: Path
    src: list[str]  # file names of the woman's faces
    dst: list[str]  # file names of the man's faces


@pytest.fixture(scope="session")
def faceset_cache(tmp_path_factory, src_video, dst_video) -> FacesetCache:
    folder = tmp_path_factory.mktemp("faceset_cache") / "aligned"
    folder.mkdir()
    src, dst = [], []
    for i, frame in _frames(src_video, SRC_FRAMES):
        src += [p.name for p in _write_faces(folder, frame, f"{i + 1:05d}.png")]
    for i, frame in _frames(dst_video, DST_FRAMES):
        dst += [p.name for p in _write_faces(folder, frame, f"{i + 1001:05d}.png")]
    assert len(src) >= SRC_FRAMES - 3 and len(dst) >= DST_FRAMES - 2, "extraction missed too many demo faces"
    return FacesetCache(folder, src, dst)


@pytest.fixture
def faceset_dir(faceset_cache, tmp_path) -> Path:
    """A fresh copy of the cached faceset (src and dst faces together) at ``tmp_path/aligned``."""
    target = tmp_path / "aligned"
    shutil.copytree(faceset_cache.folder, target)
    return target


@pytest.fixture
def src_faceset_dir(faceset_cache, tmp_path) -> Path:
    """Only the src person's faces, at ``tmp_path/aligned``."""
    target = tmp_path / "aligned"
    target.mkdir()
    for name in faceset_cache.src:
        shutil.copy2(faceset_cache.folder / name, target / name)
    return target
