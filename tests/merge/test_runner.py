"""Merging a folder: pass-through frames, skipped faces, resume, settings ranges, labels — with a real (untrained)
SAE network predicting."""

from __future__ import annotations

import errno

import cv2
import numpy as np
import pytest
import torch

from facelab import provenance
from facelab.errors import OutputError
from facelab.extract.extractor import extract_faces
from facelab.extract.frames import video_frames
from facelab.io.faceimage import write_face
from facelab.merge.options import FrameRange, resolve, save_settings
from facelab.merge import runner
from facelab.merge.runner import MergePaths, merge_folder
from facelab.options import validate
from facelab.train import checkpoint
from facelab.train.swap import Swapper
from facelab.train.models.build import build_model, option_specs

from ..conftest import TINY_MODELS

TINY_SAE = TINY_MODELS["SAE"]  # a full face with a learned mask, SAE's defaults


@pytest.fixture(scope="module")
def swapper() -> Swapper:
    torch.manual_seed(0)
    model = build_model("SAE", validate(option_specs("SAE"), TINY_SAE)).eval()
    return Swapper(model, torch.device("cpu"), "SAE", 0)


@pytest.fixture()
def folders(tmp_path, dst_video) -> MergePaths:
    """3 real dst frames; faces aligned for frames 1 and 2 only; plus a face file without metadata."""
    paths = MergePaths(tmp_path / "data_dst", tmp_path / "data_dst/aligned", tmp_path / "data_dst/merged",
                       tmp_path / "data_dst/merged_mask", tmp_path / "data_dst/merged_debug")
    paths.aligned.mkdir(parents=True)
    for number, frame in enumerate(video_frames(dst_video), 1):
        cv2.imwrite(str(paths.frames / f"{number:05d}.png"), frame.image)
        if number <= 2:
            (face, meta), = extract_faces(frame.image, image_size=128, source_filename=f"{number:05d}.png",
                                          max_faces=1)
            write_face(paths.aligned / f"{number:05d}_0.jpg", face, meta)
            if number == 1:
                cv2.imwrite(str(paths.aligned / "00001_1.jpg"), face)  # a face whose metadata is missing
        if number == 3:
            break
    return paths


def test_merge_folder(folders, swapper):
    seen = []
    report = merge_folder(folders, swapper, resolve({"mask": "dst"}), threads=2, on_frame=seen.append)
    assert (report.frames, report.merged, report.faces, report.without_face) == (3, 3, 2, 1)
    assert [p.name for p, _ in report.skipped_faces] == ["00001_1.jpg"]
    assert "no facelab metadata" in report.skipped_faces[0][1]
    assert sorted(r.name for r in seen) == ["00001.png", "00002.png", "00003.png"]

    original = cv2.imread(str(folders.frames / "00003.png"))
    assert np.array_equal(cv2.imread(str(folders.merged / "00003.png")), original)  # no face: bit-identical
    frame1 = cv2.imread(str(folders.frames / "00001.png"))
    merged1 = cv2.imread(str(folders.merged / "00001.png"))
    mask1 = cv2.imread(str(folders.merged_mask / "00001.png"), cv2.IMREAD_GRAYSCALE)
    assert merged1.shape == frame1.shape and mask1.shape == frame1.shape[:2]
    assert mask1.max() == 255 and np.array_equal(merged1[mask1 == 0], frame1[mask1 == 0])
    assert sorted(p.name for p in folders.debug.iterdir()) == ["00001.jpg", "00002.jpg"]

    labelled = provenance.verify(folders.merged / "00001.png")
    assert labelled.has_label and labelled.has_watermark
    assert labelled.label["faces_swapped"] == 1 and labelled.label["model"] == "SAE"
    passed = provenance.verify(folders.merged / "00003.png")
    assert passed.has_label and not passed.has_watermark  # labelled as part of the output, pixels untouched


def test_resume_and_overwrite(folders, swapper):
    merge_folder(folders, swapper, resolve({}))
    before = (folders.merged / "00002.png").stat().st_mtime_ns
    again = merge_folder(folders, swapper, resolve({}))
    assert (again.merged, again.kept) == (0, 3)
    assert (folders.merged / "00002.png").stat().st_mtime_ns == before
    redo = merge_folder(folders, swapper, resolve({}), overwrite=True)
    assert (redo.merged, redo.kept) == (3, 0)


def test_settings_file_ranges_override_per_frame(folders, swapper, tmp_path):
    settings_path = tmp_path / "merge_settings.json"
    save_settings(settings_path, {"mode": "overlay"}, [FrameRange(2, 2, {"mode": "raw-mask"})])
    settings = resolve({"colour_transfer": "none"}, settings_path)
    assert settings.for_frame(1)["mode"] == "overlay" and settings.for_frame(2)["mode"] == "raw-mask"
    assert settings.base["colour_transfer"] == "none"
    merge_folder(folders, swapper, settings)
    raw_mask = cv2.imread(str(folders.merged / "00002.png"))
    mask = cv2.imread(str(folders.merged_mask / "00002.png"), cv2.IMREAD_GRAYSCALE)
    assert raw_mask[mask == 0].max() == 0  # the mask layer: black outside the face
    frame1 = cv2.imread(str(folders.frames / "00001.png"))
    assert cv2.imread(str(folders.merged / "00001.png"))[0:20].tolist() == frame1[0:20].tolist()


def test_resume_redoes_a_frame_whose_mask_is_missing(folders, swapper):
    """A merge killed between a frame and its mask: the frame is not done, so the resume writes both."""
    merge_folder(folders, swapper, resolve({}))
    kept = (folders.merged / "00001.png").stat().st_mtime_ns
    (folders.merged_mask / "00002.png").unlink()
    again = merge_folder(folders, swapper, resolve({}))
    assert (again.merged, again.kept) == (1, 2)
    assert sorted(p.name for p in folders.merged_mask.iterdir()) == ["00001.png", "00002.png", "00003.png"]
    assert (folders.merged / "00001.png").stat().st_mtime_ns == kept


def _disk_full_after(monkeypatch, writes: int) -> None:
    """Let ``writes`` files of the merge be written, then fail every write as a full disk does."""
    real, done = runner.write_bytes_atomic, []

    def write(path, data):
        done.append(path)
        if len(done) > writes:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(runner, "write_bytes_atomic", write)


def test_full_disk_during_a_merge_says_what_was_kept(folders, swapper, monkeypatch):
    with monkeypatch.context() as m:
        _disk_full_after(m, 3)  # frame 1's mask, debug panel and merged frame
        with pytest.raises(OutputError, match=r"disk is full: 1 of 3 frames are merged and kept — free disk space"):
            merge_folder(folders, swapper, resolve({}), threads=1)
    assert [p.name for p in folders.merged.iterdir()] == ["00001.png"]
    again = merge_folder(folders, swapper, resolve({}), threads=1)
    assert (again.merged, again.kept) == (2, 1)


def test_cli_reports_a_full_disk_in_one_line(folders, swapper, monkeypatch, run_cli):
    workspace = folders.frames.parent  # the fixture's folders follow the workspace layout
    opts = validate(option_specs("SAE"), TINY_SAE)
    checkpoint.save(checkpoint.ModelFiles(workspace / "model", "SAE"), swapper.model, None, opts,
                    checkpoint.TrainState())
    _disk_full_after(monkeypatch, 0)
    result = run_cli("merge", "-w", str(workspace), "--device", "cpu", "--yes")
    assert result.code == 2 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[-1].startswith("error: ") and "the disk is full: 0 of 3 frames are merged and kept" in lines[-1]
    # Any other write that meets a full disk reaches the CLI as a plain OSError: the same one line.
    monkeypatch.setattr(runner, "list_images", lambda folder: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device", str(folder))))
    result = run_cli("merge", "-w", str(workspace), "--device", "cpu", "--yes")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip().splitlines()[-1].startswith(f"error: the disk is full while writing {folders.frames}")


def test_predict_faces_batches_frames_and_keeps_their_order(folders, swapper):
    by_frame, _ = runner.group_faces(folders.aligned)
    frames = [runner.read_frame(folders.frames / f"{n:05d}.png") for n in (1, 2, 3)]
    aligned = [runner.align_faces(f, by_frame.get(f"{n:05d}", []), swapper) for n, f in zip((1, 2, 3), frames)]
    assert [len(a) for a in aligned] == [1, 1, 0]
    batched = runner.predict_faces(swapper, aligned)
    alone = [runner.predict_faces(swapper, [a]) for a in aligned]
    assert [len(b) for b in batched] == [1, 1, 0] and runner.predict_faces(swapper, [[], []]) == [[], []]
    for got, (want,) in zip(batched, alone):
        for g, w in zip(got, want):
            assert g.meta == w.meta and np.allclose(g.predicted, w.predicted, atol=1e-4)
            assert g.learned_prd is not None and np.allclose(g.learned_prd, w.learned_prd, atol=1e-4)
    assert not np.allclose(batched[0][0].predicted, batched[1][0].predicted, atol=1e-3)  # each its own face
