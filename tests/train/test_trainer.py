"""The trainer on real faces: loss goes down, saves survive kills, resumes are exact, bad files and options
are refused with a clear message."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facelab.errors import ModelError, OptionError
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.train.models.sae import SAE
from facelab.train.loop import MAX_ROLLBACKS
from facelab.train.models.build import build_model, model_options
from facelab.train.trainer import train_model

TRAINED_ITERATIONS = 16  # the trained_sae fixture's (tests/train/conftest.py)


def _copy(model_dir: Path, tmp_path: Path, name: str = "model") -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / name))


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ModelFiles(model_dir, "SAE").weights))


def _history(model_dir: Path) -> dict:
    for _ in range(50):  # a trainer running meanwhile may replace the save between the look-up and the read
        try:
            return json.loads(ModelFiles(model_dir, "SAE").history.read_text())
        except FileNotFoundError:
            time.sleep(0.01)
    return json.loads(ModelFiles(model_dir, "SAE").history.read_text())


def test_short_sae_run_lowers_src_and_dst_loss(trained_sae):
    _, result, reports = trained_sae
    assert result.iteration == TRAINED_ITERATIONS and result.stopped_by == "iterations"
    src = np.array([r.loss_src for r in reports])
    dst = np.array([r.loss_dst for r in reports])
    assert np.all(np.isfinite(src)) and np.all(np.isfinite(dst))
    assert src[-4:].mean() < 0.85 * src[:4].mean(), src
    assert dst[-4:].mean() < 0.85 * dst[:4].mean(), dst


def test_save_writes_model_previews_and_loss_graph(trained_sae):
    model_dir, result, reports = trained_sae
    history = _history(model_dir)
    assert history["iteration"] == TRAINED_ITERATIONS
    assert history["loss_src"] == pytest.approx([r.loss_src for r in reports], rel=1e-5)
    options = json.loads(ModelFiles(model_dir, "SAE").options.read_text())["options"]
    assert options["resolution"] == 64 and options["batch_size"] == 4
    preview = cv2.imread(str(model_dir / "SAE_preview.png"))
    assert preview.shape == (24 + 5 * 64, 90 + 4 * 64, 3)
    graph = cv2.imread(str(model_dir / "SAE_loss.png"))
    assert graph is not None and graph.std() > 5  # lines were drawn
    assert not list(model_dir.glob(".*"))  # no temp files left behind


def test_resume_continues_exactly_where_it_stopped(trained_sae, tmp_path, src_faceset, dst_faceset):
    model_dir = trained_sae[0]
    once, twice = _copy(model_dir, tmp_path, "once"), _copy(model_dir, tmp_path, "twice")
    train_model(once, src_faceset, dst_faceset, "SAE", {}, max_iterations=2, device="cpu")
    train_model(twice, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu")
    result = train_model(twice, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu")
    assert result.iteration == TRAINED_ITERATIONS + 2
    a, b = _weights(once), _weights(twice)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert _history(once) == _history(twice)
    assert not torch.equal(a[next(iter(a))], _weights(model_dir)[next(iter(a))])  # it did train


def test_resume_from_a_flat_model_folder_is_exact_and_converts_it(trained_sae, tmp_path, src_faceset, dst_faceset):
    """Folders saved before saves were generations (and autobackups) hold the five files flat; a killed save
    left a temp folder. Both resume exactly like the saved generation."""
    saved = _copy(trained_sae[0], tmp_path, "saved")
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in ModelFiles(saved, "SAE").all():
        shutil.copy2(path, flat / path.name)
    killed = flat / ".SAE_save_000002.4242.tmp"
    killed.mkdir()
    (killed / "SAE_weights.safetensors").write_bytes(bytes(1 << 20))
    for folder in (saved, flat):
        train_model(folder, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu")
    a, b = _weights(saved), _weights(flat)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _history(flat) == _history(saved) and _history(flat)["iteration"] == TRAINED_ITERATIONS + 1
    assert ModelFiles(flat, "SAE").saved.parent == flat  # converted: its save is a generation folder now
    assert not any((flat / p.name).exists() for p in ModelFiles(flat, "SAE").all())  # the flat copies are gone
    assert not killed.exists()


_KILL_SCRIPT = """
import sys
from pathlib import Path
from facelab.train.trainer import train_model
train_model(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "SAE", {"save_minutes": 0.0},
            max_iterations=1000, device="cpu")
"""


def test_kill_at_any_moment_leaves_a_model_that_resumes(trained_sae, tmp_path, src_faceset, dst_faceset):
    model_dir = _copy(trained_sae[0], tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(model_dir), str(src_faceset), str(dst_faceset)])
    try:
        deadline = time.monotonic() + 240
        while _history(model_dir)["iteration"] < TRAINED_ITERATIONS + 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the training process ended early"
            time.sleep(0.05)
        time.sleep(0.3)  # most likely in the middle of the next save (it saves every iteration)
    finally:
        proc.kill()
        proc.wait()
    files = ModelFiles(model_dir, "SAE")
    model = build_model("SAE", checkpoint.load_options(files))
    saved_at = checkpoint.load_weights(files, model)
    state = checkpoint.load_state(files, torch.optim.Adam(model.parameters()))
    assert saved_at == state.iteration >= TRAINED_ITERATIONS + 2
    assert len(state.loss_src) == state.iteration
    result = train_model(model_dir, src_faceset, dst_faceset, "SAE", {"save_minutes": 15.0}, max_iterations=1,
                         device="cpu")
    assert result.iteration == state.iteration + 1


def test_cli_trains_and_sigterm_saves_then_stops(trained_sae, tmp_path, src_faceset, dst_faceset):
    model_dir = _copy(trained_sae[0], tmp_path)
    cmd = [sys.executable, "-c", "from facelab.cli import main; main()", "train", "--model", "SAE",
           "--model-dir", str(model_dir), "--src-aligned", str(src_faceset), "--dst-aligned", str(dst_faceset),
           "--device", "cpu", "--yes", "--batch-size", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        while not any("[#" in line for line in seen):  # the first iteration line: "[hh:mm:ss][#000017][123ms][x][y]"
            seen.append(proc.stdout.readline())
            assert seen[-1], f"the command ended early: {''.join(seen)}"
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert f"[#{TRAINED_ITERATIONS + 1:06d}]" in seen[-1] and "Resuming SAE" in seen[0]
    assert proc.returncode == 0, err
    iteration = _history(model_dir)["iteration"]
    assert iteration > TRAINED_ITERATIONS and f"Saved SAE at iteration {iteration}" in out and "signal" in out
    saved = checkpoint.load_options(ModelFiles(model_dir, "SAE"))
    assert saved["batch_size"] == 2 and saved["resolution"] == 64  # the changeable option changed


def test_truncated_or_corrupt_model_files_are_refused(trained_sae, tmp_path, src_faceset, dst_faceset):
    model_dir = _copy(trained_sae[0], tmp_path)
    files = ModelFiles(model_dir, "SAE")
    data = files.weights.read_bytes()
    files.weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="SAE_weights.safetensors: file is truncated or corrupt.*autobackups"):
        train_model(model_dir, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu")
    files.weights.write_bytes(data)
    files.optimizer.write_bytes(files.optimizer.read_bytes()[:-100])
    with pytest.raises(ModelError, match="SAE_optimizer.safetensors: file is truncated"):
        checkpoint.load_state(files, None)
    files.options.write_text('{"format": "facelab-model-1", "options": {')
    with pytest.raises(ModelError, match="SAE_options.json: corrupt JSON"):
        model_options(model_dir, "SAE", {})


def test_files_from_different_saves_are_refused(trained_sae, tmp_path):
    model_dir = _copy(trained_sae[0], tmp_path)
    files = ModelFiles(model_dir, "SAE")
    history = _history(model_dir)
    history["iteration"] += 1
    files.history.write_text(json.dumps(history))
    with pytest.raises(ModelError, match="interrupted"):
        checkpoint.load_state(files, None)


def test_out_of_range_options_are_refused_with_the_range(tmp_path):
    with pytest.raises(OptionError, match=r"--batch-size got 0, out of range — use 1 to 512"):
        model_options(tmp_path, "SAE", {"batch_size": 0})
    with pytest.raises(OptionError, match=r"--src-scale-mod got 31, out of range — use -30 to 30"):
        model_options(tmp_path, "SAE", {"src_scale_mod": 31})
    with pytest.raises(OptionError, match=r"--resolution got 512, out of range — use 64 to 256"):
        model_options(tmp_path, "SAE", {"resolution": 512})


def test_architecture_is_fixed_on_resume_but_trainer_options_change(trained_sae):
    model_dir = trained_sae[0]
    with pytest.raises(OptionError, match=r"--resolution is fixed once the model exists \(saved: 64, given: 128\)"):
        model_options(model_dir, "SAE", {"resolution": 128})
    with pytest.raises(OptionError, match="--archi is fixed"):
        model_options(model_dir, "SAE", {"archi": "liae"})
    opts, exists = model_options(model_dir, "SAE", {"batch_size": 16, "face_style_power": 10.0, "resolution": 64})
    assert exists and opts["batch_size"] == 16 and opts["face_style_power"] == 10.0 and opts["ae_dims"] == 128


def test_nan_loss_rolls_back_to_the_last_save(trained_sae, tmp_path, src_faceset, dst_faceset, monkeypatch, caplog):
    model_dir = _copy(trained_sae[0], tmp_path)
    calls = {"n": 0, "bad": {2}}
    real_loss = SAE.loss

    def flaky_loss(self, batch, out):
        calls["n"] += 1
        losses = real_loss(self, batch, out)
        if calls["n"] in calls["bad"]:
            losses = {k: v * float("nan") for k, v in losses.items()}
        return losses

    monkeypatch.setattr(SAE, "loss", flaky_loss)
    result = train_model(model_dir, src_faceset, dst_faceset, "SAE", {"batch_size": 2}, max_iterations=2, device="cpu")
    # iteration +1 was good, +2 gave NaN: back to the save at the start, then one more good iteration
    assert f"NaN/inf at iteration {TRAINED_ITERATIONS + 2}: rolled back to the last save (iteration " \
           f"{TRAINED_ITERATIONS})" in caplog.text
    assert result.iteration == TRAINED_ITERATIONS + 1 and np.isfinite(result.loss_src)
    assert len(_history(model_dir)["loss_src"]) == TRAINED_ITERATIONS + 1
    calls.update(n=0, bad=set(range(1, 100)))
    with pytest.raises(ModelError, match=f"NaN/inf {MAX_ROLLBACKS + 1} times"):
        train_model(model_dir, src_faceset, dst_faceset, "SAE", {"batch_size": 2}, max_iterations=2, device="cpu")


def test_autobackup_keeps_the_newest_copies(trained_sae, tmp_path):
    model_dir = _copy(trained_sae[0], tmp_path)
    files = ModelFiles(model_dir, "SAE")
    for iteration in (10, 20, 30):
        checkpoint.autobackup(files, iteration, keep=2)
    backups = sorted(p.name for p in (model_dir / "autobackups").iterdir())
    assert backups == ["SAE_00000020", "SAE_00000030"]
    restored = ModelFiles(model_dir / "autobackups" / "SAE_00000030", "SAE")
    assert checkpoint.load_weights(restored, build_model("SAE", checkpoint.load_options(restored))) == TRAINED_ITERATIONS
