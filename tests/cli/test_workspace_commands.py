"""`-w/--workspace` works the same on every command, including those that took the workspace as a positional
(`score`, `ui`, kept for scripts), and those that used to take none (`verify`, `faceset info`)."""

from __future__ import annotations

import shutil

import pytest

from facelab.workspace import create


@pytest.fixture
def workspace(tmp_path):
    return create(tmp_path / "ws").root


@pytest.mark.parametrize("command", [["score", "--yes", "--device", "cpu"], ["ui", "--port", "0"]])
def test_positional_and_w_name_the_same_workspace(run_cli, workspace, tmp_path, command):
    if command[0] == "ui":
        shutil.rmtree(workspace)  # ui stops before serving: no such folder
    by_flag = run_cli(*command, "-w", str(workspace))
    by_position = run_cli(command[0], str(workspace), *command[1:])
    assert by_flag.code == by_position.code == 2
    assert by_flag.err == by_position.err and str(workspace) in by_flag.err
    assert len(by_flag.err.strip().splitlines()) == 1 and "Traceback" not in by_flag.err
    other = run_cli(command[0], str(workspace), *command[1:], "--workspace", str(tmp_path / "other"))
    assert other.code == 2 and "two workspaces given" in other.err
    same = run_cli(command[0], str(workspace), *command[1:], "--workspace", str(workspace))
    assert same.err == by_flag.err  # naming it twice the same way is fine


def test_score_with_w_scores_that_workspace_not_the_default(run_cli, workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./workspace does not exist here: the default would fail differently
    result = run_cli("score", "-w", str(workspace), "--yes", "--device", "cpu")
    assert result.code == 2 and f"{workspace / 'data_dst' / 'merged'}: no merged frames" in result.err


def test_verify_without_files_checks_the_workspace_results(run_cli, workspace, dst_video):
    empty = run_cli("verify", "-w", str(workspace), "--yes")
    assert empty.code == 2 and "no result.* video to verify" in empty.err
    shutil.copy(dst_video, workspace / "result.mp4")  # a real video facelab did not make
    found = run_cli("verify", "-w", str(workspace), "--max-frames", "5")
    assert found.code == 1 and f"{workspace / 'result.mp4'}:" in found.out and "no facelab label found" in found.out


def test_faceset_info_finds_a_face_by_name_in_the_workspace(run_cli, workspace, single_face_jpg, tmp_path,
                                                            monkeypatch):
    import cv2

    from facelab.extract import extract_faces
    from facelab.io.faceimage import write_face

    face, meta = next(iter(extract_faces(cv2.imread(str(single_face_jpg)), image_size=128,
                                         source_filename="00001.png")))
    write_face(workspace / "data_dst" / "aligned" / "00001_0.jpg", face, meta)
    monkeypatch.chdir(tmp_path)
    result = run_cli("faceset", "info", "00001_0.jpg", "-w", str(workspace), "--side", "dst", "--yes")
    assert result.code == 0 and '"source_filename": "00001.png"' in result.out
    missing = run_cli("faceset", "info", "00002_0.jpg", "-w", str(workspace), "--side", "dst")
    assert missing.code == 2 and str(workspace / "data_dst" / "aligned" / "00002_0.jpg") in missing.err
