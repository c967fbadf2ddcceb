"""Talking to a running trainer from another process (the browser UI) through two files in the model folder.

```
MODEL_DIR/<MODEL>_request.json   {"action": "save" | "save_and_stop" | "preview", "at": unix time}
                                 written by the UI, polled by the trainer (one stat per iteration), removed once
                                 handled
MODEL_DIR/<MODEL>_status.json    written by the trainer every ~2 s, after each save or preview and when it stops:
                                 iteration, speed, losses, a downsampled loss history, pid and update time
```

Both are written atomically (``io.files``), so a reader never sees half a file. Whether a trainer still runs is
judged by the reader (``is_alive``): the status says running, its pid lives on this host, and it is fresh.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from facelab.errors import InputError
from facelab.io.files import write_json_atomic

Action = Literal["save", "save_and_stop", "preview"]
ACTIONS: tuple[str, ...] = ("save", "save_and_stop", "preview")
STATUS_FORMAT = "facelab-train-status-1"
STATUS_EVERY_SECONDS = 2.0
HISTORY_POINTS = 1000
RECENT_ITERATIONS = 50
# A status older than this (plus a few iterations' time, for slow models) means the trainer hung or died
# somewhere its pid cannot tell us (another host, a reused pid).
STALE_SECONDS = 60.0


def request_path(folder: Path, model: str) -> Path:
    return Path(folder) / f"{model}_request.json"


def status_path(folder: Path, model: str) -> Path:
    return Path(folder) / f"{model}_status.json"


def preview_path(folder: Path, model: str) -> Path:
    """The preview grid the trainer writes at each save (train/trainer.py)."""
    return Path(folder) / f"{model}_preview.png"


def write_request(folder: Path, model: str, action: str) -> Path:
    """Ask the trainer of ``model`` in ``folder`` to ``action`` (InputError for an unknown action)."""
    if action not in ACTIONS:
        raise InputError(f"unknown training request {action!r}", fix=f"use one of {', '.join(ACTIONS)}")
    path = request_path(folder, model)
    write_json_atomic(path, {"action": action, "at": time.time()})
    return path


class RequestWatcher:
    """The trainer's side of the request file: ``poll()`` costs one stat when nothing was asked."""

    def __init__(self, folder: Path, model: str):
        self.path = request_path(folder, model)
        # A request left from an earlier run (nobody was listening) must not stop this one at its start.
        self._take()

    def poll(self) -> Action | None:
        """The pending action, once (the file is removed), or None. An unreadable request is dropped."""
        try:
            os.stat(self.path)
        except FileNotFoundError:
            return None
        return self._take()

    def _take(self) -> Action | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError):
            data = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        action = data.get("action") if isinstance(data, dict) else None
        return action if action in ACTIONS else None


class LossDigest:
    """At most ``max_points`` (iteration, mean src loss, mean dst loss) points over a growing loss history,
    updated incrementally: each point averages ``width`` iterations, and ``width`` doubles when points run out.

    ``update`` takes the full per-iteration lists (``TrainState.loss_src``/``loss_dst``, index 0 = the first
    iteration kept) and reads only what was appended since; a shorter list (a roll-back) restarts the digest.
    """

    def __init__(self, max_points: int = HISTORY_POINTS):
        self.max_points = max(2, max_points)
        self._reset()

    def _reset(self) -> None:
        self.width = 1
        self.seen = 0
        self.buckets: list[list[float]] = []  # [sum src, sum dst, count]

    def update(self, loss_src: Sequence[float], loss_dst: Sequence[float]) -> None:
        n = min(len(loss_src), len(loss_dst))
        if n < self.seen:
            self._reset()
        for i in range(self.seen, n):
            if not self.buckets or self.buckets[-1][2] >= self.width:
                if len(self.buckets) >= self.max_points:
                    self._halve()
                if not self.buckets or self.buckets[-1][2] >= self.width:
                    self.buckets.append([0.0, 0.0, 0])
            bucket = self.buckets[-1]
            bucket[0] += loss_src[i]
            bucket[1] += loss_dst[i]
            bucket[2] += 1
        self.seen = n

    def _halve(self) -> None:
        merged = []
        for a, b in zip(self.buckets[::2], self.buckets[1::2] + [[0.0, 0.0, 0]]):
            merged.append([a[0] + b[0], a[1] + b[1], a[2] + b[2]])
        self.buckets, self.width = merged, self.width * 2

    def points(self, first_iteration: int = 1) -> dict[str, list]:
        """{"iteration": [...], "src": [...], "dst": [...]}: each point at the middle iteration of its bucket;
        ``first_iteration`` is the iteration of list index 0."""
        out: dict[str, list] = {"iteration": [], "src": [], "dst": []}
        start = first_iteration
        for s, d, count in self.buckets:
            out["iteration"].append(start + (count - 1) // 2)
            out["src"].append(round(s / count, 6))
            out["dst"].append(round(d / count, 6))
            start += count
        return out


def loss_points(loss_src: Sequence[float], loss_dst: Sequence[float], iteration: int,
                max_points: int = HISTORY_POINTS) -> dict[str, list]:
    """The downsampled history of whole lists (e.g. a saved model's history JSON) ending at ``iteration``."""
    digest = LossDigest(max_points)
    digest.update(loss_src, loss_dst)
    return digest.points(iteration - digest.seen + 1)


def _median_ms(ms: Sequence[float]) -> float | None:
    return round(statistics.median(ms), 1) if ms else None


def _rate(times: Sequence[float]) -> float | None:
    """Iterations per second over the monotonic end times of recent iterations (waits and saves included)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return round((len(times) - 1) / (times[-1] - times[0]), 3)


def _finite(value: float) -> float | None:
    return round(value, 6) if isinstance(value, (int, float)) and math.isfinite(value) else None


class TrainerControl:
    """The trainer's half: polls requests and writes the status. ``iteration_done`` is the per-iteration hook
    (cheap: a deque append and one clock read; a status write only every STATUS_EVERY_SECONDS)."""

    def __init__(self, folder: Path, model: str, every: float = STATUS_EVERY_SECONDS,
                 max_points: int = HISTORY_POINTS):
        self.folder, self.model, self.every = Path(folder), model, every
        self.requests = RequestWatcher(folder, model)
        self.digest = LossDigest(max_points)
        self.ms: deque[float] = deque(maxlen=RECENT_ITERATIONS)
        self.ends: deque[float] = deque(maxlen=RECENT_ITERATIONS)
        self.started_at = time.time()
        self.started = time.monotonic()
        self.last_write = -math.inf
        self.last_save_iteration: int | None = None

    def poll(self) -> Action | None:
        return self.requests.poll()

    def iteration_done(self, state, ms: float) -> None:
        self.ms.append(ms)
        self.ends.append(time.monotonic())
        if self.ends[-1] - self.last_write >= self.every:
            self.write(state)

    def saved(self, state) -> None:
        self.last_save_iteration = state.iteration
        self.write(state)

    def write(self, state, running: bool = True, stopped_by: str | None = None) -> dict[str, Any]:
        """Write the status now (atomically); returns it."""
        status = self.status(state, running, stopped_by)
        write_json_atomic(status_path(self.folder, self.model), status)
        self.last_write = time.monotonic()
        return status

    def status(self, state, running: bool = True, stopped_by: str | None = None) -> dict[str, Any]:
        self.digest.update(state.loss_src, state.loss_dst)
        preview = preview_path(self.folder, self.model)
        return {
            "format": STATUS_FORMAT, "model": self.model, "iteration": state.iteration,
            "ms_per_iteration": _median_ms(self.ms), "iterations_per_second": _rate(self.ends),
            "started_at": self.started_at, "elapsed_seconds": round(time.monotonic() - self.started, 1),
            "loss_src": _finite(state.loss_src[-1]) if state.loss_src else None,
            "loss_dst": _finite(state.loss_dst[-1]) if state.loss_dst else None,
            "history": self.digest.points(state.iteration - self.digest.seen + 1),
            "running": running, "stopped_by": stopped_by, "pid": os.getpid(), "host": socket.gethostname(),
            "updated_at": time.time(), "last_save_iteration": self.last_save_iteration,
            "preview_mtime": preview.stat().st_mtime if preview.is_file() else None,
        }


# -- the reader's side (the UI) ------------------------------------------------------------------------------


def read_status(folder: Path, model: str) -> dict[str, Any] | None:
    """The last status the trainer wrote, or None (none yet, or unreadable)."""
    try:
        data = json.loads(status_path(folder, model).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == STATUS_FORMAT else None


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` runs on this host. Only a positive int names one process: 0 and negative numbers
    name process groups (``kill(0, 0)`` always succeeds), so they, and anything else, are not a live pid."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except (OSError, OverflowError):  # past the system's pid range
        return False
    return True


def is_alive(status: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether the trainer that wrote ``status`` still runs: it said so, its pid lives (when it ran on this
    host) and the status is fresh (STALE_SECONDS plus a few of its iterations)."""
    if not status or not status.get("running"):
        return False
    now = time.time() if now is None else now
    ms = status.get("ms_per_iteration") or 0.0
    if now - float(status.get("updated_at") or 0.0) > STALE_SECONDS + 3 * ms / 1000:
        return False
    if status.get("host") == socket.gethostname() and isinstance(status.get("pid"), int):
        return pid_alive(status["pid"])
    return True
