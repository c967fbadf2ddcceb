"""Model saves are one atomic step: a kill or a full disk at any moment of a save leaves the last complete save,
which resumes; temp files of killed saves are removed at the next start; saved files share one mode; hostile
options files are refused in one line."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facelab.errors import FacelabError, ModelError, OutputError
from facelab.options import validate
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles, TrainState
from facelab.train.models.build import build_model, model_options, option_specs

from .conftest import TINY_SAE


class _Killed(BaseException):
    """Stands for a kill -9: no ``except Exception`` handler runs, so nothing is tidied up."""


# Everything a save does to the disk, in its own namespace: each call is a moment a kill can hit.
_SAVE_STEPS = ("_write_json", "save_model", "save_file", "_fsync", "fsync_folder")


def _tiny_model(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer, dict]:
    """A real tiny SAE and an Adam that took one step (so the optimizer state has moments to save)."""
    opts = validate(option_specs("SAE"), TINY_SAE)
    torch.manual_seed(seed)
    model = build_model("SAE", opts)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss = sum(p.float().pow(2).mean() for p in model.parameters())
    loss.backward()
    optimizer.step()
    return model, optimizer, opts


def _state(iteration: int) -> TrainState:
    return TrainState(iteration, [0.5 - i * 1e-3 for i in range(iteration)], [0.4] * iteration,
                      torch_rng=torch.Generator().manual_seed(iteration).get_state())


def _loaded(folder: Path) -> tuple[int, dict[str, torch.Tensor], TrainState]:
    """(weights' iteration, every tensor a resume reads: weights, Adam moments, torch RNG; state) of the model
    in ``folder``, read the way a resume reads them."""
    files = ModelFiles(folder, "SAE")
    model = build_model("SAE", checkpoint.load_options(files))
    iteration = checkpoint.load_weights(files, model)
    optimizer = torch.optim.Adam(model.parameters())
    state = checkpoint.load_state(files, optimizer)
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors.update({f"adam.{i}.{k}": v for i, s in optimizer.state_dict()["state"].items() for k, v in s.items()})
    tensors["rng"] = state.torch_rng
    return iteration, tensors, state


def _count_steps(monkeypatch, kill_at: int | None) -> list[str]:
    """Wrap the save's disk steps (and os.rename, shutil.rmtree); raise _Killed before step ``kill_at``."""
    calls: list[str] = []

    def wrap(owner, name):
        real = getattr(owner, name)

        def step(*args, **kwargs):
            calls.append(name)
            if kill_at is not None and len(calls) == kill_at:
                raise _Killed(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, step)

    for name in _SAVE_STEPS:
        wrap(checkpoint, name)
    wrap(checkpoint.os, "rename")
    wrap(checkpoint.shutil, "rmtree")
    return calls


@pytest.fixture(scope="module")
def two_models():
    return _tiny_model(1), _tiny_model(2)


def test_a_save_killed_at_any_step_leaves_the_last_complete_save(two_models, tmp_path, monkeypatch):
    (old, old_opt, opts), (new, new_opt, _) = two_models
    reference = tmp_path / "reference"
    checkpoint.save(ModelFiles(reference, "SAE"), new, new_opt, opts, _state(9))
    expected_new = _loaded(reference)
    first = tmp_path / "first"
    checkpoint.save(ModelFiles(first, "SAE"), old, old_opt, opts, _state(5))
    expected_old = _loaded(first)
    with monkeypatch.context() as m:
        calls = _count_steps(m, None)
        checkpoint.save(ModelFiles(shutil.copytree(first, tmp_path / "count"), "SAE"), new, new_opt, opts, _state(9))
    steps = len(calls)
    assert steps >= 10, calls  # 3 JSON, 2 safetensors, 2 fsyncs, 2 folder fsyncs, the rename, removing the old

    outcomes = []
    for kill_at in range(1, steps + 1):
        folder = Path(shutil.copytree(first, tmp_path / f"killed_{kill_at}"))
        with monkeypatch.context() as m:
            _count_steps(m, kill_at)
            with pytest.raises(_Killed):
                checkpoint.save(ModelFiles(folder, "SAE"), new, new_opt, opts, _state(9))
        iteration, weights, state = _loaded(folder)
        outcomes.append(iteration)
        want = expected_old if iteration == 5 else expected_new
        assert iteration == state.iteration == want[0], kill_at
        assert weights.keys() == want[1].keys() and all(torch.equal(weights[k], want[1][k]) for k in weights), kill_at
        assert state.loss_src == want[2].loss_src
        # The next start continues from it and ends exactly like a save that was never interrupted.
        checkpoint.save(ModelFiles(folder, "SAE"), new, new_opt, opts, _state(9))
        iteration, weights, state = _loaded(folder)
        assert iteration == 9 and all(torch.equal(weights[k], expected_new[1][k]) for k in weights), kill_at
        (_, newest), = checkpoint.generations(folder, "SAE")
        assert list(folder.iterdir()) == [newest], kill_at  # no temp folder, no older save left
    # Killed before the rename: the old save; from the rename on: the new one, never a mix.
    assert outcomes == sorted(outcomes) and outcomes[0] == 5 and outcomes[-1] == 9, outcomes


_KILL_AT_RENAME = """
import json, os, signal, sys
from pathlib import Path
import torch
from facelab.options import validate
from facelab.train import checkpoint
from facelab.train.models.build import build_model, option_specs
opts = validate(option_specs("SAE"), json.loads(sys.argv[3]))
model = build_model("SAE", opts)
real = os.rename
def rename(a, b):
    if sys.argv[2] == "after":
        real(a, b)
    os.kill(os.getpid(), signal.SIGKILL)
checkpoint.os.rename = rename
checkpoint.save(checkpoint.ModelFiles(Path(sys.argv[1]), "SAE"), model, torch.optim.Adam(model.parameters()), opts,
                checkpoint.TrainState(iteration=7, loss_src=[0.1] * 7, loss_dst=[0.2] * 7))
"""


@pytest.mark.parametrize("moment", ["before", "after"])
def test_kill_9_at_the_rename_resumes_from_a_complete_save(two_models, tmp_path, moment):
    (old, old_opt, opts), _ = two_models
    checkpoint.save(ModelFiles(tmp_path, "SAE"), old, old_opt, opts, _state(5))
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_RENAME, str(tmp_path), moment, json.dumps(TINY_SAE)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == (1 if moment == "before" else 0)
    assert len(checkpoint.generations(tmp_path, "SAE")) == (1 if moment == "before" else 2)
    iteration, _, state = _loaded(tmp_path)
    assert iteration == state.iteration == (5 if moment == "before" else 7)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the resume removed the temp folder


def test_leftover_temp_files_are_removed_at_the_next_start_and_only_those(two_models, tmp_path):
    (old, old_opt, opts), _ = two_models
    checkpoint.save(ModelFiles(tmp_path, "SAE"), old, old_opt, opts, _state(5))
    ours = [tmp_path / ".SAE_weights.k2j_9x0a.safetensors", tmp_path / ".SAE_optimizer.abcdefgh.json",
            tmp_path / ".SAE_preview.q1w2e3r4.png", tmp_path / "preview_history" / ".SAE_00000005.zzzzzzzz.png"]
    (tmp_path / "preview_history").mkdir()
    for path in ours:
        path.write_bytes(os.urandom(4096))
    killed_save = tmp_path / ".SAE_save_000002.4242.tmp"
    killed_save.mkdir()
    (killed_save / "SAE_weights.safetensors").write_bytes(b"\0" * 4096)
    theirs = [tmp_path / ".notes.txt", tmp_path / ".H128_weights.k2j_9x0a.safetensors", tmp_path / "SAE_weights.bak",
              tmp_path / ".SAE_weights.safetensors", tmp_path / ".SAE_save_000002.tmp"]
    for path in theirs:
        path.write_text("keep me")
    checkpoint.load_state(ModelFiles(tmp_path, "SAE"), None)  # what a resume does first
    assert not any(p.exists() for p in [*ours, killed_save])
    assert all(p.read_text() == "keep me" for p in theirs)
    assert _loaded(tmp_path)[0] == 5


def test_saved_files_share_one_mode(two_models, tmp_path):
    (old, old_opt, opts), _ = two_models
    checkpoint.save(ModelFiles(tmp_path, "SAE"), old, old_opt, opts, _state(3))
    umask = os.umask(0)
    os.umask(umask)
    files = ModelFiles(tmp_path, "SAE")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files.all()}
    assert modes == {p.name: 0o666 & ~umask for p in files.all()}, modes
    assert stat.S_IMODE(files.saved.stat().st_mode) == 0o777 & ~umask


def test_flat_model_folders_load_and_convert_on_their_first_save(two_models, tmp_path):
    (old, old_opt, opts), (new, new_opt, _) = two_models
    checkpoint.save(ModelFiles(tmp_path / "saved", "SAE"), old, old_opt, opts, _state(5))
    flat = tmp_path / "flat"
    shutil.copytree(ModelFiles(tmp_path / "saved", "SAE").saved, flat)  # the layout before generations
    assert checkpoint.find_models(flat) == ["SAE"] and _loaded(flat)[0] == 5
    checkpoint.save(ModelFiles(flat, "SAE"), new, new_opt, opts, _state(6))
    assert [p.name for p in flat.iterdir()] == ["SAE_save_000001"]
    assert checkpoint.find_models(flat) == ["SAE"] and _loaded(flat)[0] == 6


def test_a_full_disk_during_a_save_keeps_the_last_complete_save(two_models, tmp_path, monkeypatch):
    (old, old_opt, opts), (new, new_opt, _) = two_models
    checkpoint.save(ModelFiles(tmp_path, "SAE"), old, old_opt, opts, _state(5))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(OutputError, match=r"disk is full: the save at iteration 9 was not written; the last "
                                          r"complete save \(iteration 5\) is kept — free disk space"):
        checkpoint.save(ModelFiles(tmp_path, "SAE"), new, new_opt, opts, _state(9))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the partial save is gone
    assert _loaded(tmp_path)[0] == 5



def test_a_full_disk_at_the_stop_reports_the_save_not_the_status_write(trained_sae, src_faceset, dst_faceset,
                                                                        tmp_path, monkeypatch):
    """The run's last status write (for the UI) fails on the same full disk as the save: the user still reads
    why the save failed and that the last complete save is kept."""
    from facelab.train import control
    from facelab.train.trainer import train_model

    model_dir = tmp_path / "model"
    shutil.copytree(trained_sae[0], model_dir)
    real_write = control.write_json_atomic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def status_write(path, status):
        if status.get("running") is False:  # the finally of the run: the disk has filled meanwhile
            full()
        real_write(path, status)

    monkeypatch.setattr(checkpoint, "save_file", full)
    monkeypatch.setattr(control, "write_json_atomic", status_write)
    with pytest.raises(OutputError, match=r"disk is full: the save at iteration 17 was not written; the last "
                                          r"complete save \(iteration 16\) is kept"):
        train_model(model_dir, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu", seed=0)
    assert _loaded(model_dir)[0] == 16

@pytest.mark.parametrize("options, message", [
    ('{"learning_rate": NaN}', "corrupt JSON"),
    ('{"learning_rate": 1e400}', "option 'learning_rate' holds inf"),
    ('{"batch_size": [1, 2]}', "option 'batch_size' holds"),
    ('{"../x": 1}', "option name '../x' is not a plain name"),
    ('{"learning_rate": 0.5}', r"--learning-rate got 0.5, out of range — use 1e-06 to 0.01"),
    ('{"save_minutes": -1.5}', r"--save-minutes got -1.5, out of range"),
    ('{"batch_size": true}', r"--batch-size got True, which is not a int"),
    ('{"archi": {"a": 1}}', "option 'archi' holds"),
    ('[' * 100000 + ']' * 100000, "corrupt JSON"),
])
def test_hostile_options_files_are_refused_in_one_line(two_models, tmp_path, options, message):
    (old, old_opt, opts), _ = two_models
    files = ModelFiles(tmp_path, "SAE")
    checkpoint.save(files, old, old_opt, opts, _state(2))
    saved = json.loads(files.options.read_text())
    saved["options"]["hostile"] = 0  # last, so the hostile key wins over a saved one of the same name
    text = options if options.startswith("[") else json.dumps(saved).replace('"hostile": 0', options[1:-1])
    files.options.write_text(text)
    with pytest.raises(FacelabError) as caught:
        model_options(tmp_path, "SAE", {})
    assert "\n" not in str(caught.value) and re.search(message, str(caught.value)), caught.value


def test_history_with_non_finite_losses_is_refused(two_models, tmp_path):
    (old, old_opt, opts), _ = two_models
    files = ModelFiles(tmp_path, "SAE")
    checkpoint.save(files, old, old_opt, opts, _state(2))
    files.history.write_text(files.history.read_text().replace("0.499", "1e999"))
    with pytest.raises(ModelError, match="corrupt history"):
        checkpoint.load_state(files, None)
    assert load_file(str(files.weights))  # the weights themselves are untouched
