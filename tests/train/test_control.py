"""The trainer's control files: requests picked up once, the status a UI reads, a dead or stale trainer seen
as stopped, and the downsampled loss history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from facelab.errors import InputError
from facelab.train import control
from facelab.train.checkpoint import TrainState


def test_a_request_is_picked_up_once_and_removed(tmp_path):
    watcher = control.RequestWatcher(tmp_path, "SAE")
    assert watcher.poll() is None
    path = control.write_request(tmp_path, "SAE", "save")
    assert path == tmp_path / "SAE_request.json" and path.is_file()
    assert watcher.poll() == "save"
    assert not path.exists()
    assert watcher.poll() is None
    control.write_request(tmp_path, "SAE", "preview")
    control.write_request(tmp_path, "SAE", "save_and_stop")  # the newer request replaces the older
    assert watcher.poll() == "save_and_stop"
    assert watcher.poll() is None
    assert not list(tmp_path.glob(".*"))  # no temp files left


def test_requests_for_another_model_are_not_taken(tmp_path):
    watcher = control.RequestWatcher(tmp_path, "SAE")
    control.write_request(tmp_path, "H64", "save")
    assert watcher.poll() is None
    assert (tmp_path / "H64_request.json").is_file()


def test_a_request_left_before_the_trainer_started_is_dropped(tmp_path):
    control.write_request(tmp_path, "SAE", "save_and_stop")
    watcher = control.RequestWatcher(tmp_path, "SAE")
    assert watcher.poll() is None
    assert not (tmp_path / "SAE_request.json").exists()


def test_bad_requests_are_refused_or_dropped(tmp_path):
    with pytest.raises(InputError, match="unknown training request"):
        control.write_request(tmp_path, "SAE", "delete")
    watcher = control.RequestWatcher(tmp_path, "SAE")
    (tmp_path / "SAE_request.json").write_text("{not json")
    assert watcher.poll() is None
    (tmp_path / "SAE_request.json").write_text(json.dumps({"action": "format_disk"}))
    assert watcher.poll() is None
    assert not (tmp_path / "SAE_request.json").exists()


def _state(n: int, start: int = 0) -> TrainState:
    src = [1.0 / (i + 1) for i in range(n)]
    return TrainState(iteration=start + n, loss_src=src, loss_dst=[2 * v for v in src])


def test_status_says_what_the_ui_shows(tmp_path):
    (tmp_path / "SAE_preview.png").write_bytes(b"png")
    ctl = control.TrainerControl(tmp_path, "SAE", every=3600)
    state = _state(5)
    for ms in (10.0, 30.0, 20.0):
        ctl.iteration_done(state, ms)  # the first one writes (nothing written yet), then every hour
    first = control.read_status(tmp_path, "SAE")
    assert first["ms_per_iteration"] == 10.0
    ctl.saved(state)
    status = control.read_status(tmp_path, "SAE")
    assert status["model"] == "SAE" and status["iteration"] == 5 and status["last_save_iteration"] == 5
    assert status["ms_per_iteration"] == 20.0  # the median of the recent iterations
    assert status["iterations_per_second"] > 0
    assert status["loss_src"] == pytest.approx(0.2) and status["loss_dst"] == pytest.approx(0.4)
    assert status["history"] == {"iteration": [1, 2, 3, 4, 5], "src": [1.0, 0.5, 0.333333, 0.25, 0.2],
                                 "dst": [2.0, 1.0, 0.666667, 0.5, 0.4]}
    assert status["running"] is True and status["pid"] == os.getpid()
    assert status["preview_mtime"] == pytest.approx((tmp_path / "SAE_preview.png").stat().st_mtime)
    assert status["elapsed_seconds"] >= 0 and status["started_at"] <= time.time()
    assert control.is_alive(status)


def test_a_stopped_stale_or_dead_trainer_reads_as_not_running(tmp_path):
    ctl = control.TrainerControl(tmp_path, "SAE")
    status = ctl.write(_state(3))
    assert control.is_alive(status)
    assert not control.is_alive(status, now=status["updated_at"] + control.STALE_SECONDS + 1)  # hung
    assert not control.is_alive(ctl.write(_state(3), running=False, stopped_by="user"))
    assert control.read_status(tmp_path, "SAE")["stopped_by"] == "user"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    assert not control.is_alive({**status, "pid": int(dead.stdout)})  # that process has exited
    # On another host the pid means nothing: only the age counts.
    assert control.is_alive({**status, "pid": int(dead.stdout), "host": "elsewhere"})
    assert not control.is_alive(None)


def test_only_a_positive_pid_of_a_running_process_is_alive():
    """One pid check serves the status reader and the sample cache's orphan clean-up: 0 and negative pids name
    process groups (kill(0, 0) always succeeds), so a status or cache name saying pid 0 must not read as alive."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    assert control.pid_alive(os.getpid()) and control.pid_alive(1)  # ours, and init (someone else's: still alive)
    for pid in (int(dead.stdout), 0, -1, 2**70, True, "123", None, 1.0):
        assert not control.pid_alive(pid), pid


def test_missing_or_foreign_status_reads_as_none(tmp_path):
    assert control.read_status(tmp_path, "SAE") is None
    (tmp_path / "SAE_status.json").write_text("{half")
    assert control.read_status(tmp_path, "SAE") is None
    (tmp_path / "SAE_status.json").write_text(json.dumps({"format": "other", "running": True}))
    assert control.read_status(tmp_path, "SAE") is None


def test_loss_digest_keeps_at_most_max_points_with_exact_means():
    rng = np.random.default_rng(0)
    src, dst = list(rng.random(2500)), list(rng.random(2500))
    digest = control.LossDigest(max_points=100)
    for n in (1, 7, 99, 100, 101, 1000, 2500):  # grown in steps, as a trainer does
        digest.update(src[:n], dst[:n])
        points = digest.points()
        assert len(points["iteration"]) <= 100
        width = digest.width
        expected = [np.mean(src[a:min(a + width, n)]) for a in range(0, n, width)]
        np.testing.assert_allclose(points["src"], expected, atol=1e-6)
        assert points["iteration"][0] == 1 + (min(width, n) - 1) // 2
    assert digest.width == 32 and len(digest.points()["src"]) == 79
    once = control.loss_points(src, dst, iteration=2500, max_points=100)
    assert once == digest.points()


def test_loss_digest_restarts_after_a_roll_back_and_numbers_iterations_after_a_resume():
    digest = control.LossDigest(max_points=10)
    digest.update([1.0] * 30, [1.0] * 30)
    digest.update([5.0] * 4, [6.0] * 4)  # a roll-back reloaded a shorter history
    assert digest.points() == {"iteration": [1, 2, 3, 4], "src": [5.0] * 4, "dst": [6.0] * 4}
    # a history of 4 values that ends at iteration 104 (the iteration count restarted after pretraining: 100)
    assert control.loss_points([1, 2, 3, 4], [1, 2, 3, 4], iteration=104)["iteration"] == [101, 102, 103, 104]
