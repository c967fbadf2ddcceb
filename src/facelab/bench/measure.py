"""Measuring tools shared by the benchmarks: peak memory while a block runs, and the device's matmul peak.

Timing statistics (median and quartiles) come from ``facelab.train.bench.Timing``.
"""

from __future__ import annotations

import os
import platform
import resource
import threading
import time
from typing import Any, Callable

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_mib() -> float:
    """This process's resident memory now, in MiB (Linux /proc; elsewhere the lifetime peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2 ** 20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Peak memory while the ``with`` block runs, in MiB: GPU memory allocated by torch on a CUDA device,
    else the process's resident memory, sampled every ``interval`` seconds on a thread (so one process can
    measure several benchmarks one after another, which ``ru_maxrss`` cannot)."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mib = 0.0
        self.kind = "CUDA" if self.device.type == "cuda" else "RSS"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_mib = current_rss_mib()
            self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-memory")
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, current_rss_mib())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2 ** 20
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mib = max(self.peak_mib, current_rss_mib())


def precision_name(dtype: torch.dtype | None) -> str:
    """"fp32", "bf16" or "fp16" for a compute dtype (None: float32, i.e. no autocast)."""
    return {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so a timer read after it includes that work."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, size: int | None = None,
                       seconds: float = 1.0, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best-of-runs GFLOP/s of a square matmul in ``dtype`` on ``device`` over about ``seconds``: the
    practical peak that achieved training FLOP/s are compared with. ``size`` defaults to 2048 on the CPU and
    8192 on a GPU (big enough to fill it). ``clock`` ``time.process_time`` (CPU only) gives GFLOP per CPU-second
    of this process instead, which other work sharing the cores does not lower."""
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # warm-up: thread pool, kernels, cuBLAS handles
    synchronize(device)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = clock()
        a @ b
        synchronize(device)
        best = max(best, 2 * size ** 3 / max(clock() - start, 1e-9) / 1e9)
    return best


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: torch, Python, CPU cores and threads, load average, time (UTC)."""
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def top_ops(run: Callable[[], Any], steps: int, device: torch.device, count: int = 5) -> list[dict[str, Any]]:
    """Where the time of ``steps`` calls of ``run`` goes: the ``count`` torch ops with the most self time (on the
    CPU, or on the GPU for a CUDA ``device``), as {"op", "ms_per_step", "share"} (share of all ops' self time)."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            run()
        synchronize(device)

    def self_us(event: Any) -> float:
        return float(getattr(event, "self_device_time_total", 0.0) if on_gpu else event.self_cpu_time_total)

    events = sorted(prof.key_averages(), key=self_us, reverse=True)
    total = sum(self_us(e) for e in events) or 1.0
    return [{"op": e.key, "ms_per_step": self_us(e) / 1000 / steps, "share": self_us(e) / total}
            for e in events[:count]]
