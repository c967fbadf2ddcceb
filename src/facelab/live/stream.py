"""The live pipeline: frames in → detect/track → align → swap → blend → frames out, on threads joined by bounded
queues, so a slow moment drops frames instead of piling up delay.

    reader ──(queue of ``queue`` frames; full: the oldest is dropped)──▶ prepare (track, align, model)
           ──(1)──▶ blend + watermark (this thread) ──(4)──▶ writer (encode)

A camera delivers frames at its own pace; a video file is read at its frame rate when ``realtime`` (as a camera
would), else as fast as the swap takes them, with no drops. Latency is counted from the moment a frame arrives
(is due, for a paced file) to the moment its swapped frame is ready to show or encode.
"""

from __future__ import annotations

import queue
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from facelab.live.session import STAGES, LiveSwap
from facelab.live.sources import FrameSource, VideoSink

_END = object()
REPORT_EVERY = 1.0  # seconds between ``on_stats`` calls


@dataclass
class StreamReport:
    """What a stream did: frames read, swapped and dropped, faces swapped, wall seconds from the first frame in to
    the last frame out, per-frame latency and stage times (ms)."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    faces: int = 0
    seconds: float = 0.0
    latency_ms: array = field(default_factory=lambda: array("d"))
    stage_ms: dict[str, array] = field(default_factory=lambda: {s: array("d") for s in STAGES})

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def latency(self, percent: float) -> float:
        return float(np.percentile(self.latency_ms, percent)) if len(self.latency_ms) else float("nan")

    def stage_median(self, stage: str) -> float:
        values = self.stage_ms[stage]
        return float(np.median(values)) if len(values) else float("nan")

    def summary(self) -> dict[str, Any]:
        return {"frames_in": self.frames_in, "frames_out": self.frames_out, "dropped": self.dropped,
                "faces": self.faces, "seconds": self.seconds, "fps": self.fps,
                "latency_median_ms": self.latency(50), "latency_p95_ms": self.latency(95),
                "stage_median_ms": {s: self.stage_median(s) for s in STAGES}}


@dataclass
class _Arrived:
    number: int  # position in the stream (0 first; keeps counting over loops)
    image: np.ndarray
    at: float


def source_frames(source: FrameSource, loop: bool) -> Iterator[np.ndarray]:
    """The source's frames, pass after pass when ``loop`` (a file played again from its start)."""
    while True:
        yielded = False
        for image in source.frames():
            yielded = True
            yield image
        if not loop or not yielded:
            return


def run_stream(live: LiveSwap, source: FrameSource, sink: VideoSink | None = None, *, realtime: bool = True,
               queue_size: int = 2, loop: bool = False, max_seconds: float | None = None,
               stop: threading.Event | None = None,
               on_stats: Callable[[StreamReport], None] | None = None) -> StreamReport:
    """Swap ``source`` into ``sink`` (or only measure, without one) until the source ends, ``max_seconds`` have
    passed or ``stop`` is set (also by Ctrl-C): what was swapped until then is kept. A failure in any stage stops
    every stage, throws the partial recording away and is raised here."""
    stop = stop or threading.Event()
    report = StreamReport()
    drops = realtime or source.camera
    arrived: queue.Queue = queue.Queue(maxsize=queue_size)
    prepared: queue.Queue = queue.Queue(maxsize=1)
    written: queue.Queue = queue.Queue(maxsize=4)
    counts = {"in": 0, "dropped": 0}
    failures: list[BaseException] = []
    live.reset()

    def read() -> None:
        start = time.perf_counter()
        for number, image in enumerate(source_frames(source, loop)):
            wait = start + number / float(source.fps) - time.perf_counter()
            if realtime and not source.camera and wait > 0:
                time.sleep(wait)
            if stop.is_set() or (max_seconds is not None and time.perf_counter() - start > max_seconds):
                return
            counts["in"] += 1
            item = _Arrived(number, image, time.perf_counter())
            if drops:
                _put_dropping_oldest(arrived, item, counts)
            elif not _put(arrived, item, stop):
                return

    def prepare() -> None:
        while (item := _get(arrived, stop)) is not _END:
            _put(prepared, (item, live.prepare(item.image)), stop)

    def write() -> None:
        while (item := _get(written, stop)) is not _END:
            sink.write(*item)

    threads = [_thread(read, arrived, stop, failures, "live-reader"),
               _thread(prepare, prepared, stop, failures, "live-swap")]
    if sink is not None:
        threads.append(_thread(write, None, stop, failures, "live-writer"))
    try:
        _blend_loop(live, prepared, written if sink is not None else None, report, stop, on_stats, counts)
    except KeyboardInterrupt:
        stop.set()
    except BaseException as err:
        failures.append(err)
        stop.set()
    finally:
        if sink is not None:
            _put(written, _END, stop)
        for thread in threads:
            thread.join()
        if sink is not None:
            sink.close(ok=not failures)
    report.frames_in, report.dropped = counts["in"], counts["dropped"]
    if failures:
        raise failures[0]
    return report


def _blend_loop(live: LiveSwap, prepared: queue.Queue, written: queue.Queue | None, report: StreamReport,
                stop: threading.Event, on_stats, counts: dict[str, int]) -> None:
    """Blend each prepared frame, count it and hand it to the writer, until the stream ends or stops."""
    first = None
    last_stats = time.perf_counter()
    while (item := _get(prepared, stop)) is not _END:
        arrived, ready = item
        frame = live.blend(ready)
        done = time.perf_counter()
        first = arrived.at if first is None else first
        report.frames_out += 1
        report.faces += frame.faces
        report.latency_ms.append(1000 * (done - arrived.at))
        for stage in STAGES:
            report.stage_ms[stage].append(frame.ms.get(stage, 0.0))
        report.seconds = done - first
        if written is not None:
            _put(written, (arrived.number, frame.frame), stop)
        if on_stats is not None and done - last_stats >= REPORT_EVERY:
            report.frames_in, report.dropped = counts["in"], counts["dropped"]
            on_stats(report)
            last_stats = done


def _thread(work: Callable[[], None], out: queue.Queue | None, stop: threading.Event,
            failures: list[BaseException], name: str) -> threading.Thread:
    """A started daemon thread running ``work``; a failure is recorded and stops every stage; at its end it
    sends _END to ``out`` (the next stage)."""

    def run() -> None:
        try:
            work()
        except BaseException as err:  # raised by run_stream, in the caller's thread
            failures.append(err)
            stop.set()
        finally:
            if out is not None:
                _put(out, _END, stop)

    thread = threading.Thread(target=run, daemon=True, name=name)
    thread.start()
    return thread


def _put(box: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put, waiting for room; False when ``stop`` is set first (the item is not delivered)."""
    while not stop.is_set():
        try:
            box.put(item, timeout=0.05)
            return True
        except queue.Full:
            pass
    return False


def _get(box: queue.Queue, stop: threading.Event) -> Any:
    """The next item, or _END once ``stop`` is set."""
    while not stop.is_set():
        try:
            return box.get(timeout=0.05)
        except queue.Empty:
            pass
    return _END


def _put_dropping_oldest(box: queue.Queue, item: _Arrived, counts: dict[str, int]) -> None:
    """Queue ``item``; when the queue is full the oldest waiting frame makes room (it would only add delay)."""
    while True:
        try:
            box.put_nowait(item)
            return
        except queue.Full:
            try:
                box.get_nowait()
                counts["dropped"] += 1
            except queue.Empty:
                pass
