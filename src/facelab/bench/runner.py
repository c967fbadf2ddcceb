"""`facelab bench` as a library call: run the chosen benchmarks on each device, return rows; format and save them."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from facelab.bench import stages
from facelab.bench.measure import machine_info, matmul_peak_gflops, precision_name
from facelab.device import resolve_devices
from facelab.io.files import write_json_atomic
from facelab.progress import ProgressCallback, no_progress
from facelab.train.precision import amp_dtype

BENCHES = ("extract", "train", "merge")
# Iterations per benchmark: (full, quick). Train counts are steps after warm-up, per setting.
ITERATIONS = {"extract": (60, 6), "train": (20, 3), "merge": (30, 4)}
WARMUP = {"extract": (3, 1), "train": (3, 1)}


@dataclass
class BenchReport:
    machine: dict[str, Any]
    matmul_peak_gflops: dict[str, float]  # per "device precision", e.g. "cpu bf16"
    rows: list[stages.BenchRow] = field(default_factory=list)
    quick: bool = False
    # The same per CPU-second of this process (CPU devices): what training's CPU time per step is compared with.
    matmul_peak_cpu_gflops: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "matmul_peak_gflops": self.matmul_peak_gflops,
                "matmul_peak_cpu_gflops": self.matmul_peak_cpu_gflops, "quick": self.quick,
                "rows": [dataclasses.asdict(r) for r in self.rows]}


def bench_devices(spec: str = "auto") -> list[torch.device]:
    """The devices to measure on: ``auto`` = the CPU and, when present, the GPU with most free memory;
    anything else as ``facelab.device.resolve_devices``."""
    if (spec or "auto").strip().lower() == "auto":
        gpu = [d for d in resolve_devices("auto") if d.type == "cuda"]
        return [torch.device("cpu"), *gpu]
    return resolve_devices(spec)


def train_precisions(device: torch.device) -> tuple[str, ...]:
    """The ``amp`` values training is measured at: float32 ("off"), and the faster precision "auto" picks on
    ``device`` when it has one (bf16 on CPUs with AVX-512-BF16 or AMX, bf16/fp16 on CUDA)."""
    return ("off", "auto") if amp_dtype(device, "auto") is not None else ("off",)


def run_benchmarks(which: str = "all", devices: list[torch.device] | None = None, *, quick: bool = False,
                   on_row: Callable[[stages.BenchRow], None] | None = None,
                   progress: ProgressCallback = no_progress) -> BenchReport:
    """Run ``which`` ("extract", "train", "merge" or "all") on every device (default: ``bench_devices()``).

    ``quick`` runs a few iterations only (a smoke run; the spread means little). The matmul peak of each device
    is measured in the same run, before and after each training setting (the best counts).
    """
    if which != "all" and which not in BENCHES:
        raise ValueError(f"unknown benchmark {which!r}")
    chosen = BENCHES if which == "all" else (which,)
    level = 1 if quick else 0
    report = BenchReport(machine_info(), {}, quick=quick)

    def add(row: stages.BenchRow) -> None:
        report.rows.append(row)
        if on_row is not None:
            on_row(row)

    def measure_peak(device: torch.device) -> None:
        # Best of several measurements around the training runs: on a shared machine a single one taken while
        # other work runs would understate the peak (and overstate the share training achieves).
        # Each precision training may run in (float32, and the autocast one): achieved FLOP/s compare with their own.
        for dtype in dict.fromkeys((torch.float32, amp_dtype(device, "auto") or torch.float32)):
            key = f"{device} {precision_name(dtype)}"
            report.matmul_peak_gflops[key] = max(report.matmul_peak_gflops.get(key, 0.0),
                                                 matmul_peak_gflops(device, dtype))
            if device.type == "cpu":
                report.matmul_peak_cpu_gflops[key] = max(report.matmul_peak_cpu_gflops.get(key, 0.0),
                                                         matmul_peak_gflops(device, dtype, clock=time.process_time))

    for device in devices or bench_devices():
        if "extract" in chosen:
            add(stages.bench_extract(device, ITERATIONS["extract"][level], WARMUP["extract"][level], progress))
        if "train" in chosen:
            measure_peak(device)
            for setting in stages.TRAIN_SETTINGS:
                for amp in train_precisions(device):
                    add(stages.bench_train(setting, device, ITERATIONS["train"][level], WARMUP["train"][level],
                                           amp=amp, progress=progress))
                    measure_peak(device)
        if "merge" in chosen:
            add(stages.bench_merge(device, ITERATIONS["merge"][level], progress))
    report.machine["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return report


def format_table(report: BenchReport) -> list[str]:
    """The report as aligned text lines: one row per measurement, then the settings behind each row.

    "% peak" compares wall time with the matmul peak; "% CPU" compares CPU time (GFLOP per CPU-second of the
    process, training and matmul alike), which stays meaningful when other work shares the cores."""
    head = (f"{'bench':8s} {'setting':18s} {'device':7s} {'prec':5s} {'rate':>16s} {'ms/it median':>12s} "
            f"{'IQR ms':>15s} {'its':>4s} {'peak MiB':>13s} {'GFLOP/s':>8s} {'% peak':>6s} {'% CPU':>6s}")
    lines = [head, "-" * len(head)]
    for r in report.rows:
        peak = report.matmul_peak_gflops.get(f"{r.device} {r.precision}")
        gflops = f"{r.gflops:8.1f}" if r.gflops is not None else f"{'':8s}"
        share = f"{100 * r.gflops / peak:5.0f}%" if r.gflops is not None and peak else f"{'':6s}"
        lines.append(f"{r.bench:8s} {r.setting:18s} {r.device:7s} {r.precision:5s} {r.rate:9.2f} {r.unit:>6s} "
                     f"{r.median_ms:12.1f} {f'{r.q1_ms:.1f}-{r.q3_ms:.1f}':>15s} {r.iterations:4d} "
                     f"{f'{r.peak_mib:.0f} {r.memory}':>13s} {gflops} {share} {_cpu_share(report, r)}")
    lines.append("")
    for key, peak in report.matmul_peak_gflops.items():
        per_cpu = report.matmul_peak_cpu_gflops.get(key)
        lines.append(f"matmul peak on {key} (best of the measurements around training in this run): "
                     f"{peak:.0f} GFLOP/s" + (f", {per_cpu:.0f} GFLOP per CPU-second" if per_cpu else ""))
    for key in dict.fromkeys((r.bench, r.setting) for r in report.rows):
        row = next(r for r in report.rows if (r.bench, r.setting) == key)
        lines.append(f"{row.bench} {row.setting}: {row.description}")
    for r in (r for r in report.rows if r.extra.get("top_ops")):
        dfl = r.extra.get("deepfacelab_ms")
        versus = (f" (DeepFaceLab 2 SAEHD at these widths, on issue 18's AVX-512-BF16/AMX machine: {dfl:.0f}; "
                  f"ratio {dfl / r.median_ms:.2f})" if dfl else "")
        lines.append(f"{r.bench} {r.setting} {r.device} {r.precision}: {r.median_ms:.0f} ms/it{versus}; top ops: "
                     + ", ".join(f"{op['op']} {100 * op['share']:.0f}% ({op['ms_per_step']:.0f} ms)"
                                 for op in r.extra["top_ops"]))
    m = report.machine
    lines.append(f"torch {m['torch']}, {m['cpu_cores']} CPU cores ({m['torch_threads']} torch threads, "
                 f"{m['cpu_capability']}), load average {m['load_average']:.1f} at start, "
                 f"{m.get('load_average_end', float('nan')):.1f} at end" + (" — quick run" if report.quick else ""))
    return lines


def _cpu_share(report: BenchReport, row: stages.BenchRow) -> str:
    """The "% CPU" cell: training GFLOP per CPU-second against the matmul's, or blank."""
    peak = report.matmul_peak_cpu_gflops.get(f"{row.device} {row.precision}")
    cpu_ms = row.extra.get("cpu_ms")
    if not peak or not cpu_ms:
        return f"{'':6s}"
    return f"{100 * row.extra['gflop_per_step'] / (cpu_ms / 1000) / peak:5.0f}%"


def save(report: BenchReport, path: str | Path) -> None:
    """Write the report as JSON, atomically."""
    write_json_atomic(path, report.to_json())
