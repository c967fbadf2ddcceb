"""Training on the smallest facesets (one face per side, sides of different face sizes) saves its previews, and
sample workers never outlive a trainer killed with kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.io.faceimage import list_faces, read_face, write_face
from facelab.train.preview import preview_grid
from facelab.train.trainer import train_model

from .conftest import TINY_SAE


def _subset(faceset: Path, folder: Path, count: int, size: int | None = None) -> Path:
    """The first ``count`` faces of ``faceset`` copied to ``folder``, resized to ``size`` px (with metadata)."""
    folder.mkdir(parents=True)
    for path in list_faces(faceset)[:count]:
        image, meta = read_face(path)
        if size is not None and size != image.shape[0]:
            s = size / image.shape[0]
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            meta.image_size = size
            meta.landmarks = meta.landmarks * s
            meta.face_from_image = meta.face_from_image * s
        write_face(folder / path.name, image, meta)
    return folder


@pytest.mark.parametrize("src_count, dst_count, dst_size", [(1, 1, None), (3, 2, 96)])
def test_tiny_facesets_train_and_save_a_preview(tmp_path, src_faceset, dst_faceset, src_count, dst_count, dst_size):
    src = _subset(src_faceset, tmp_path / "src", src_count)
    dst = _subset(dst_faceset, tmp_path / "dst", dst_count, dst_size)
    model_dir = tmp_path / "model"
    result = train_model(model_dir, src, dst, "SAE", {**TINY_SAE, "batch_size": 2}, max_iterations=1, device="cpu",
                         seed=0)
    assert result.iteration == 1 and np.isfinite(result.loss_src) and np.isfinite(result.loss_dst)
    preview = cv2.imread(str(model_dir / "SAE_preview.png"))
    columns = max(src_count, dst_count)
    assert preview.shape == (24 + 5 * 64, 90 + columns * 64, 3)
    dst_row = preview[24 + 2 * 64: 24 + 3 * 64, 90:]
    assert dst_row[:, : dst_count * 64].std() > 10  # real faces, then blank cells where dst has none
    assert np.all(dst_row[:, dst_count * 64:] == 32)


def test_preview_grid_pads_short_rows_and_resizes_odd_faces():
    rng = np.random.default_rng(0)
    rows = {"src": rng.random((3, 64, 64, 3)), "src_src": rng.random((3, 64, 64, 3)),
            "dst": (rng.random((1, 48, 48, 3)) * 255).astype(np.uint8), "dst_dst": rng.random((1, 48, 48, 3)),
            "dst_src": rng.random((1, 64, 64, 3))}
    grid = preview_grid(rows, 7)
    assert grid.shape == (24 + 5 * 64, 90 + 3 * 64, 3)
    dst = grid[24 + 2 * 64: 24 + 3 * 64, 90:]
    assert np.array_equal(dst[:, :64], cv2.resize(rows["dst"][0], (64, 64), interpolation=cv2.INTER_AREA))
    assert np.all(dst[:, 64:] == 32)


_FEEDER = """
import sys, time
from pathlib import Path
from facelab.train.samples import FaceCache, FeedSettings, SampleFeeder
src = FaceCache.build(Path(sys.argv[1]), "full", 64)
dst = FaceCache.build(Path(sys.argv[2]), "full", 64)
feeder = SampleFeeder(src, dst, FeedSettings(2), workers=2, seed=1)
feeder.next()
print("ready", flush=True)
time.sleep(600)
"""


def _children(pid: int) -> dict[int, str]:
    """pid → command line of the live processes whose parent is ``pid`` (Linux /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out[int(entry.name)] = cmdline
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie waits only for its new parent to reap it)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sample_workers_and_resource_tracker_exit_when_the_trainer_is_killed(tmp_path, src_faceset, dst_faceset):
    src, dst = _subset(src_faceset, tmp_path / "src", 4), _subset(dst_faceset, tmp_path / "dst", 4)
    proc = subprocess.Popen([sys.executable, "-c", _FEEDER, str(src), str(dst)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        children = _children(proc.pid)
        workers = [p for p, cmd in children.items() if "multiprocessing.spawn" in cmd]
        trackers = [p for p, cmd in children.items() if "resource_tracker" in cmd]
        assert len(workers) == 2 and len(trackers) == 1, children
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_running(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in children if _running(p)]
    for pid in left:  # do not leave them behind for the next tests
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after the trainer was killed: {[children[p] for p in left]}"
