"""Long steps started from a page run in a thread; the page polls their progress and result."""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from facelab.errors import FacelabError
from facelab.progress import Progress, ProgressCallback


@dataclass
class Job:
    id: int
    label: str = ""
    done: int = 0
    total: int | None = None
    finished: bool = False
    error: str | None = None
    result: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, event: Progress) -> None:
        with self._lock:
            self.label, self.done, self.total = event.label, event.done, event.total

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {"id": self.id, "label": self.label, "done": self.done, "total": self.total,
                    "finished": self.finished, "error": self.error, "result": self.result}


class Jobs:
    """Runs ``work(progress)`` in a daemon thread; a FacelabError becomes the job's one-line ``error``."""

    def __init__(self):
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}

    def start(self, work: Callable[[ProgressCallback], Any]) -> Job:
        job = Job(next(self._ids))
        self._jobs[job.id] = job

        def run() -> None:
            try:
                result, error = work(job.progress), None
            except FacelabError as exc:
                result, error = None, str(exc)
            except Exception as exc:  # shown on the page; the server keeps running
                traceback.print_exc()
                result, error = None, f"{type(exc).__name__}: {exc}"
            with job._lock:
                job.result, job.error, job.finished = result, error, True

        threading.Thread(target=run, name=f"facelab-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)
