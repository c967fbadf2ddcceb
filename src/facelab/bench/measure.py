"""Measuring tools shared by the benchmarks: peak memory while a block runs, and the device's matmul peak.

Timing statistics (median and quartiles) come from ``facelab.train.bench.Timing``.
"""

from __future__ import annotations

import os
import resource
import threading
import time

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
                       seconds: float = 1.0) -> float:
    """Best-of-runs GFLOP/s of a square matmul in ``dtype`` on ``device`` over about ``seconds``: the
    practical peak that achieved training FLOP/s are compared with. ``size`` defaults to 2048 on the CPU and
    8192 on a GPU (big enough to fill it)."""
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # warm-up: thread pool, kernels, cuBLAS handles
    synchronize(device)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = max(best, 2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return best
