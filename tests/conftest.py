"""Shared fixtures: real face media from pip packages (see ../shared/MODELS.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from facelab.cli import main

from facelab.io import demo_media


# The smallest settings each registered model allows, so a CPU trains (and exports) any of them in seconds.
TINY_MODELS = {
    "H64": {"lightweight": True},
    "H128": {"lightweight": True},
    "DF": {"lightweight": True},
    "LIAEF128": {"lightweight": True},
    "SAE": {"resolution": 64, "ae_dims": 128, "e_ch_dims": 21, "d_ch_dims": 11, "mask_dims": 16},
    "SAEHD": {"resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "mask_dims": 16, "gan_dims": 4,
              "gan_patch_size": 8, "archi": "liae-ud"},
    "Quick96": {},
}


def extract_faceset(video: Path, folder: Path, every: int, limit: int, size: int = 128) -> Path:
    """Every ``every``-th frame of ``video`` → its face aligned as a full face at ``size`` px in ``folder``, until
    ``limit`` faces are written; at least half of them must be found."""
    from facelab.extract.extractor import extract_faces
    from facelab.extract.frames import video_frames
    from facelab.io.faceimage import write_face

    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for index, frame in enumerate(video_frames(video)):
        if index % every:
            continue
        for image, meta in extract_faces(frame.image, face_type="full", image_size=size, source_filename=frame.name,
                                         max_faces=1):
            write_face(folder / f"{Path(frame.name).stem}_0.jpg", image, meta)
            written += 1
        if written >= limit:
            break
    assert written >= limit // 2, f"only {written} faces found in {video}"
    return folder


@pytest.fixture(scope="session")
def faceset_from_video() -> Callable[..., Path]:
    """``extract_faceset``: real aligned faces from a demo video, for the folders' own session fixtures."""
    return extract_faceset


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> Path:
    """The demo run on 0.5 s of dst (15 frames) and 2 s of src, with a 4-iteration SAE: frames, aligned faces,
    aligned_debug, a model with preview, merged frames and result.mp4; built once per session for the web and
    XSeg tests. Tests copy it before changing it."""
    from facelab.pipeline import DemoSettings, run_demo

    root = tmp_path_factory.mktemp("demo") / "workspace"
    run_demo(root, DemoSettings(minutes=5, dst_seconds=0.5, src_seconds=2.0, iterations=4, device="cpu",
                                train_workers=0))
    return root


@pytest.fixture
def workspace(demo_workspace, tmp_path) -> Path:
    """A private copy of the demo workspace."""
    target = tmp_path / "workspace"
    shutil.copytree(demo_workspace, target)
    return target


@pytest.fixture(scope="session")
def src_video() -> Path:
    """A woman, 472 frames, 640×360, 23.976 fps, H.264 + AAC."""
    return demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO)


@pytest.fixture(scope="session")
def dst_video() -> Path:
    """A man, 72 frames, 640×360, 30 fps, H.264 + MP3."""
    return demo_media.packaged_file(demo_media.DEMO_DST_VIDEO)


@pytest.fixture(scope="session")
def single_face_jpg() -> Path:
    return demo_media.packaged_file(demo_media.SINGLE_FACE_JPG)


@pytest.fixture(scope="session")
def multi_face_jpg() -> Path:
    """Five people."""
    return demo_media.packaged_file(demo_media.MULTI_FACE_JPG)


class CliRun(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys) -> Callable[..., CliRun]:
    """Run ``facelab ARGS`` as a user would (errors become one line and an exit code)."""

    def run(*args: str) -> CliRun:
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


# The smallest XSeg: every width at its smallest, so a 2-core CPU trains it in a few seconds.
TINY_XSEG = {"resolution": 64, "channels": 4, "batch_size": 4, "learning_rate": 2e-3, "save_minutes": 600.0}
TINY_XSEG_ITERATIONS = 12


@pytest.fixture(scope="session")
def tiny_xseg(demo_workspace, tmp_path_factory) -> Path:
    """A tiny generic-start XSeg trained TINY_XSEG_ITERATIONS iterations on the demo workspace's faces: its folder
    (tests copy it, e.g. to WORKSPACE/model/xseg, before changing it)."""
    from facelab.xseg.trainer import train_xseg

    folder = tmp_path_factory.mktemp("tiny_xseg") / "xseg"
    train_xseg(folder, [demo_workspace / "data_src/aligned", demo_workspace / "data_dst/aligned"], dict(TINY_XSEG),
               max_iterations=TINY_XSEG_ITERATIONS, seed=0)
    return folder
