"""`facelab workspace create|clear`: the layout users know, and clearing that never takes the videos by surprise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest





@pytest.fixture
def filled(tmp_path, run_cli, src_video, dst_video) -> Path:
    """A created workspace with both real videos, some frames, a face and a result."""
    ws = tmp_path / "workspace"
    assert run_cli("workspace", "create", "--workspace", str(ws))[0] == 0
    shutil.copy(src_video, ws / "data_src.mp4")
    shutil.copy(dst_video, ws / "data_dst.mov")
    (ws / "data_src" / "00001.png").write_bytes(b"frame")
    (ws / "data_dst" / "aligned" / "00001_0.jpg").write_bytes(b"face")
    (ws / "result.mp4").write_bytes(b"result")
    return ws


LAYOUT = ["data_src", "data_src/aligned", "data_dst", "data_dst/aligned", "data_dst/aligned_debug",
          "data_dst/merged", "data_dst/merged_mask", "model"]


def test_create_makes_the_layout_and_keeps_content(tmp_path, run_cli):
    ws = tmp_path / "workspace"
    code, out, _ = run_cli("workspace", "create", "-w", str(ws))
    assert code == 0 and "data_src.mp4" in out
    assert all((ws / sub).is_dir() for sub in LAYOUT)
    (ws / "data_src" / "00001.png").write_bytes(b"frame")
    assert run_cli("workspace", "create", "-w", str(ws))[0] == 0
    assert (ws / "data_src" / "00001.png").read_bytes() == b"frame"


def test_clear_keeps_videos(filled, run_cli, src_video):
    code, out, _ = run_cli("workspace", "clear", "-w", str(filled), "--yes")
    assert code == 0, out
    assert (filled / "data_src.mp4").read_bytes() == src_video.read_bytes()
    assert (filled / "data_dst.mov").is_file()
    assert not (filled / "data_src" / "00001.png").exists()
    assert not (filled / "data_dst" / "aligned" / "00001_0.jpg").exists()
    assert not (filled / "result.mp4").exists()
    assert all((filled / sub).is_dir() for sub in LAYOUT)  # the layout is back, empty


def test_clear_deletes_videos_only_when_asked(filled, run_cli):
    code, out, _ = run_cli("workspace", "clear", "-w", str(filled), "--yes", "--delete-videos")
    assert code == 0, out
    assert not (filled / "data_src.mp4").exists() and not (filled / "data_dst.mov").exists()
    assert sorted(p.name for p in filled.iterdir()) == ["data_dst", "data_src", "model"]


def test_clear_refuses_without_yes_off_a_terminal(filled, run_cli):
    before = sorted(p.relative_to(filled) for p in filled.rglob("*"))
    code, _, err = run_cli("workspace", "clear", "-w", str(filled))
    assert code != 0 and "--yes" in err and "Traceback" not in err
    assert sorted(p.relative_to(filled) for p in filled.rglob("*")) == before


def test_clear_missing_workspace_is_harmless(tmp_path, run_cli):
    code, out, _ = run_cli("workspace", "clear", "-w", str(tmp_path / "nowhere"), "--yes")
    assert code == 0 and "nothing to clear" in out
    assert not (tmp_path / "nowhere").exists()
