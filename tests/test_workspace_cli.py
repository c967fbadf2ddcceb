"""`facelab workspace create|clear`: the layout users know; clearing moves only what facelab made, into a trash
folder inside the workspace, and never touches a folder that is not a workspace."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from facelab.workspace import TRASH_NAME

LAYOUT = ["data_src", "data_src/aligned", "data_dst", "data_dst/aligned", "data_dst/aligned_debug",
          "data_dst/merged", "data_dst/merged_mask", "model"]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` → its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _trash_bins(ws: Path) -> list[Path]:
    return sorted((ws / TRASH_NAME).iterdir())


@pytest.fixture
def filled(tmp_path, run_cli, src_video, dst_video, single_face_jpg) -> Path:
    """A created workspace with both real videos, a frame, a face, a model file, a result, a score report,
    and the user's own notes and photo beside them."""
    ws = tmp_path / "workspace"
    assert run_cli("workspace", "create", "--workspace", str(ws))[0] == 0
    shutil.copy(src_video, ws / "data_src.mp4")
    shutil.copy(dst_video, ws / "data_dst.mov")
    shutil.copy(single_face_jpg, ws / "data_src" / "00001.jpg")
    shutil.copy(single_face_jpg, ws / "data_dst" / "aligned" / "00001_0.jpg")
    (ws / "model" / "h64_history.json").write_text("[]")
    shutil.copy(dst_video, ws / "result.mp4")
    (ws / "score.json").write_text("{}")
    (ws / "notes.txt").write_text("which takes looked best")
    shutil.copy(single_face_jpg, ws / "reference.jpg")
    return ws


def test_create_makes_the_layout_and_keeps_content(tmp_path, run_cli):
    ws = tmp_path / "workspace"
    code, out, _ = run_cli("workspace", "create", "-w", str(ws))
    assert code == 0 and "data_src.mp4" in out
    assert all((ws / sub).is_dir() for sub in LAYOUT)
    (ws / "data_src" / "00001.png").write_bytes(b"frame")
    assert run_cli("workspace", "create", "-w", str(ws))[0] == 0
    assert (ws / "data_src" / "00001.png").read_bytes() == b"frame"


def test_clear_moves_what_facelab_made_to_the_trash_and_keeps_the_rest(filled, run_cli, src_video, single_face_jpg):
    before = _snapshot(filled)
    code, out, _ = run_cli("workspace", "clear", "-w", str(filled), "--yes")
    assert code == 0, out
    # Videos and the user's own files stay, bit for bit.
    for name in ("data_src.mp4", "data_dst.mov", "notes.txt", "reference.jpg"):
        assert (filled / name).read_bytes() == before[name]
    assert all((filled / sub).is_dir() and not any((filled / sub).iterdir()) for sub in LAYOUT if "/" in sub)
    assert not (filled / "result.mp4").exists() and not (filled / "score.json").exists()
    # Everything cleared is in one trash folder, where it was relative to the workspace, unchanged.
    (trash,) = _trash_bins(filled)
    assert str(trash) in out
    moved = _snapshot(trash)
    assert sorted(moved) == sorted(k for k in before if k.split("/")[0] in ("data_src", "data_dst", "model",
                                                                            "result.mp4", "score.json"))
    assert all(moved[k] == before[k] for k in moved)
    assert moved["data_dst/aligned/00001_0.jpg"] == single_face_jpg.read_bytes()


def test_delete_videos_moves_them_to_the_trash_too(filled, run_cli, src_video):
    code, out, _ = run_cli("workspace", "clear", "-w", str(filled), "--yes", "--delete-videos")
    assert code == 0, out
    assert sorted(p.name for p in filled.iterdir()) == [TRASH_NAME, "data_dst", "data_src", "model", "notes.txt",
                                                         "reference.jpg"]
    (trash,) = _trash_bins(filled)
    assert (trash / "data_src.mp4").read_bytes() == src_video.read_bytes() and (trash / "data_dst.mov").is_file()


def test_a_second_clear_keeps_the_first_ones_trash(filled, run_cli):
    assert run_cli("workspace", "clear", "-w", str(filled), "--yes")[0] == 0
    (filled / "data_src" / "00002.jpg").write_bytes(b"frame 2")
    assert run_cli("workspace", "clear", "-w", str(filled), "--yes")[0] == 0
    first, second = _trash_bins(filled)
    assert (first / "data_src" / "00001.jpg").is_file() and (second / "data_src" / "00002.jpg").is_file()


def test_clear_refuses_without_yes_off_a_terminal(filled, run_cli):
    before = _snapshot(filled)
    code, _, err = run_cli("workspace", "clear", "-w", str(filled))
    assert code != 0 and "--yes" in err and "Traceback" not in err
    assert _snapshot(filled) == before


def test_clear_leaves_a_folder_that_is_not_a_workspace_alone(tmp_path, run_cli, src_video, single_face_jpg):
    documents = tmp_path / "Documents"
    (documents / "photos").mkdir(parents=True)
    (documents / "model").mkdir()  # the user's own folder that happens to share a workspace folder's name
    (documents / "model" / "plane.stl").write_bytes(b"solid plane")
    (documents / "thesis.txt").write_text("chapter 1")
    shutil.copy(single_face_jpg, documents / "photos" / "me.jpg")
    shutil.copy(src_video, documents / "holiday.mp4")
    before = _snapshot(documents)
    code, _, err = run_cli("workspace", "clear", "-w", str(documents), "--yes")
    assert code == 2 and "not a facelab workspace" in err and "--is-workspace" in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(documents) == before and not (documents / TRASH_NAME).exists()
    # Told it is a workspace, it moves only what facelab would have made; the rest stays.
    code, out, _ = run_cli("workspace", "clear", "-w", str(documents), "--yes", "--is-workspace")
    assert code == 0, out
    (trash,) = _trash_bins(documents)
    assert (trash / "model" / "plane.stl").read_bytes() == b"solid plane"
    for name in ("thesis.txt", "photos/me.jpg", "holiday.mp4"):
        assert (documents / name).read_bytes() == before[name]


def test_clear_never_follows_a_trash_folder_that_is_a_link(filled, run_cli, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (filled / TRASH_NAME).symlink_to(elsewhere)
    before = _snapshot(filled)
    code, _, err = run_cli("workspace", "clear", "-w", str(filled), "--yes")
    assert code == 2 and "link" in err and "Traceback" not in err
    assert not any(elsewhere.iterdir()) and _snapshot(filled) == before


def test_clear_creates_a_missing_workspace(tmp_path, run_cli):
    code, out, _ = run_cli("workspace", "clear", "-w", str(tmp_path / "new"), "--yes")
    assert code == 0 and "created" in out
    assert all((tmp_path / "new" / sub).is_dir() for sub in LAYOUT)
    assert not (tmp_path / "new" / TRASH_NAME).exists()


def test_create_under_a_regular_file_is_one_line(tmp_path, run_cli):
    (tmp_path / "a_file").write_text("not a folder")
    code, _, err = run_cli("workspace", "create", "-w", str(tmp_path / "a_file" / "ws"))
    assert code == 2 and err.startswith("error: ") and "Not a directory" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_create_on_a_read_only_location_is_one_line(tmp_path, run_cli, monkeypatch):
    if os.geteuid() == 0:  # root writes through permission bits: make the disk itself refuse
        def read_only(path, *args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        monkeypatch.setattr(os, "mkdir", read_only)
    else:
        tmp_path.chmod(0o555)
    try:
        code, _, err = run_cli("workspace", "create", "-w", str(tmp_path / "ws"))
    finally:
        tmp_path.chmod(0o755)
    assert code == 2 and err.startswith("error: ") and "cannot create the workspace folder" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
