"""Broken and hostile input to the extract step: one frame, one rectangle or one record that is wrong is
skipped with a warning or stops the step with a one-line error; it never aborts with a traceback, and a run
never reports fewer frames or no faces as if that were fine."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from facelab.errors import InputError, OutputError, VideoError
from facelab.extract import runner
from facelab.extract.detectors.manual import load_rectangles
from facelab.extract.frames import read_image
from facelab.io.frames import list_images
from facelab.extract.runner import LOG_NAME, extract_folder, extract_video, frames_to_revisit, read_log
from facelab.io.faceimage import list_faces, read_meta


def _huge_png(path, width: int = 100_000, height: int = 100_000) -> None:
    """A small, valid-looking PNG whose header claims ``width`` × ``height`` pixels (CRC fixed up)."""
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.fixture
def frames_dir(tmp_path, single_face_jpg):
    """data_src/ with one real frame, 00001.png."""
    frames = tmp_path / "data_src"
    frames.mkdir()
    cv2.imwrite(str(frames / "00001.png"), cv2.imread(str(single_face_jpg)))
    return frames


def _huge_jpg(path, width: int = 60_000, height: int = 60_000) -> None:
    """A small JPEG whose frame header (SOF0) claims ``width`` × ``height`` pixels."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


def test_frame_whose_header_claims_100000_by_100000_is_skipped_not_fatal(frames_dir, settings):
    _huge_png(frames_dir / "00002.png")
    _huge_jpg(frames_dir / "00003.jpg")
    assert "100000×100000" in read_image(frames_dir / "00002.png").error
    assert "60000×60000" in read_image(frames_dir / "00003.jpg").error
    report = extract_folder(frames_dir, frames_dir / "aligned", **settings)
    assert (report.frames, report.faces) == (3, 1) and list(report.unreadable) == ["00002.png", "00003.jpg"]
    assert read_log(frames_dir / "aligned")["unreadable"]["00002.png"].startswith("100000×100000")


def test_folder_of_only_unreadable_frames_is_an_error_not_zero_faces(tmp_path, settings, run_cli):
    frames = tmp_path / "ws" / "data_src"
    frames.mkdir(parents=True)
    _huge_png(frames / "00001.png")
    (frames / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    with pytest.raises(InputError, match="none of the 2 frame files could be read"):
        extract_folder(frames, frames / "aligned", **settings)
    result = run_cli("extract", "src", "--workspace", str(tmp_path / "ws"), "--yes")
    assert result.code != 0 and "none of the 2 frame files could be read" in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


def test_hidden_files_are_not_frames(frames_dir):
    (frames_dir / ".00002.png").write_bytes(b"")
    assert list_images(frames_dir) == [frames_dir / "00001.png"]


def test_next_run_removes_its_own_leftover_temp_files_only(frames_dir, settings):
    aligned = frames_dir / "aligned"
    aligned.mkdir()
    own = [aligned / ".00013_0.k2j4h1_x.jpg", aligned / ".extract_log.abcdefgh.json"]
    others = [aligned / ".notes.abcdefgh.jpg", aligned / "notes.txt", frames_dir / ".00013_0.k2j4h1_x.jpg"]
    for path in own + others:
        path.write_bytes(b"")
    assert list_faces(aligned) == []  # an empty temp file of a killed write is never a face
    extract_folder(frames_dir, aligned, **settings)
    assert [p.exists() for p in own + others] == [False, False, True, True, True]
    assert [p.name for p in list_faces(aligned)] == ["00001_0.jpg"]


def test_full_disk_while_writing_faces_is_one_line_saying_what_was_kept(tmp_path, multi_face_jpg, settings,
                                                                         monkeypatch):
    frames = tmp_path / "data_dst"
    frames.mkdir()
    shutil.copy(multi_face_jpg, frames / "00001.jpg")  # five faces
    real, calls, lock = runner.write_face, [], threading.Lock()

    def disk_fills_after_one(path, *args, **kwargs):
        with lock:
            calls.append(path)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, *args, **kwargs)

    monkeypatch.setattr(runner, "write_face", disk_fills_after_one)
    with pytest.raises(OutputError, match="aligned: the disk is full: extraction stopped; the 1 face files in the "
                                          "folder are whole and kept.*free some disk space") as caught:
        extract_folder(frames, frames / "aligned", **settings)
    assert "\n" not in str(caught.value) and len(list_faces(frames / "aligned")) == 1


def test_truncated_video_fails_like_video_extract_and_keeps_what_it_found(tmp_path, src_video, settings):
    cut = tmp_path / "data_src.mp4"
    cut.write_bytes(src_video.read_bytes()[: src_video.stat().st_size // 2])
    aligned = tmp_path / "data_src" / "aligned"
    with pytest.raises(VideoError, match="ends after 228 of 472 frames; the 1 faces found before it are kept"):
        extract_video(cut, aligned, only=["00001.png", "00400.png"], **settings)
    assert [p.name for p in list_faces(aligned)] == ["00001_0.jpg"]
    assert read_log(aligned)["frames"] == 1


BAD_RECTANGLES = {
    "NaN": ('{"00001.png": [[NaN, 10, 100, 120]]}', "00001.png: rectangle 1 .* not finite"),
    "1e30": ('{"00001.png": [[10, 10, 100, 120], [0, 0, 1e30, 50]]}', "00001.png: rectangle 2 .* not finite"),
    "Infinity": ('{"00001.png": [[0, 0, Infinity, 50]]}', "not finite"),
    "empty": ('{"00002.png": [[100, 10, 50, 120]]}', "00002.png: rectangle .* is empty"),
    "negative": ('{"00003.png": [[-300, -300, -200, -100]]}', "00003.png: rectangle .* outside the frame"),
    "three numbers": ('{"00001.png": [[1, 2, 3]]}', "not four numbers"),
    "strings": ('{"00001.png": [["1", "2", "30", "40"]]}', "not four numbers"),
    "not a list": ('{"00001.png": {"x": 1}}', "must be a list"),
    "a path": ('{"../../etc/00001.png": [[1, 2, 30, 40]]}', "is not a frame file name"),
    "not an object": ("[[1, 2, 3, 4]]", "not a JSON object"),
    "not JSON": ("{'00001.png': ", "not a rectangles file"),
    "deep": ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
}


@pytest.mark.parametrize("case", list(BAD_RECTANGLES), ids=list(BAD_RECTANGLES))
def test_bad_rectangles_are_one_line_errors_naming_the_entry(tmp_path, case):
    text, message = BAD_RECTANGLES[case]
    path = tmp_path / "rects.json"
    path.write_text(text)
    with pytest.raises(InputError, match=f"rects.json: .*{message}") as caught:
        load_rectangles(path)
    assert "\n" not in str(caught.value)


def test_rectangle_partly_outside_the_frame_still_gives_its_face(frames_dir, settings, tmp_path):
    path = tmp_path / "rects.json"
    path.write_text(json.dumps({"00001.png": [[-20, 100, 400, 500], [5000, 5000, 5100, 5100]]}))
    rects = load_rectangles(path)
    report = extract_folder(frames_dir, frames_dir / "aligned", **{**settings, "detector": "manual",
                                                                   "rectangles": rects})
    assert report.faces == 1 and read_meta(frames_dir / "aligned" / "00001_0.jpg").detector == "manual"


BAD_LOGS = {
    "corrupt": ('{"no_face": ["00001.png"', "is not valid JSON"),
    "not an object": ('["00001.png"]', "is not a JSON object"),
    "no_face a number": ('{"no_face": 5}', "has a malformed 'no_face'"),
    "no_face a string": ('{"no_face": "00001.png"}', "has a malformed 'no_face'"),
    "unreadable a list": ('{"unreadable": ["00001.png"]}', "has a malformed 'unreadable'"),
    "debug_images a path": ('{"debug_images": ["../../x.png"]}', "has a malformed 'debug_images'"),
    "manual a string count": ('{"manual": {"00001.png": "2"}}', "has a malformed 'manual'"),
    "deep": ('{"no_face": ' + "[" * 100_000 + "]" * 100_000 + "}", "is not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_LOGS), ids=list(BAD_LOGS))
def test_broken_extract_log_is_an_error_not_nothing_to_revisit(tmp_path, case, run_cli):
    text, message = BAD_LOGS[case]
    aligned = tmp_path / "data_src" / "aligned"
    aligned.mkdir(parents=True)
    (aligned / LOG_NAME).write_text(text)
    with pytest.raises(InputError, match=f"{LOG_NAME}: the extract record {message}"):
        frames_to_revisit(aligned)
    cv2.imwrite(str(tmp_path / "data_src" / "00001.png"), np.zeros((32, 32, 3), np.uint8))
    result = run_cli("extract", "src", "--workspace", str(tmp_path), "--yes", "--revisit")
    assert result.code != 0 and "Nothing to revisit" not in result.out
    assert f"the extract record {message.replace(chr(92), '')}" in result.err and "Traceback" not in result.err


def test_two_src_videos_are_refused_naming_both(tmp_path, dst_video, run_cli):
    for name in ("data_src.mp4", "data_src.mkv"):
        shutil.copy(dst_video, tmp_path / name)
    result = run_cli("extract", "src", "--workspace", str(tmp_path), "--yes")
    assert result.code != 0 and "2 data_src videos: data_src.mkv, data_src.mp4" in result.err
    assert not (tmp_path / "data_src" / "aligned").exists()
