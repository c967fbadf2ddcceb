"""`facelab bench` behaviour (not speed): devices, peak memory, the table and bench.json on a real extract run."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import pytest
import torch

from facelab.bench.measure import PeakMemory, matmul_peak_gflops, top_ops
from facelab.bench.runner import bench_devices, format_table, run_benchmarks, save, train_precisions
from facelab.cli import main
from facelab.errors import DeviceError


def test_devices():
    assert bench_devices("cpu") == [torch.device("cpu")]
    auto = bench_devices("auto")
    assert auto[0] == torch.device("cpu")
    assert len(auto) == (2 if torch.cuda.is_available() else 1)
    with pytest.raises(DeviceError):
        bench_devices("cuda:99")


def test_peak_memory_sees_a_freed_allocation():
    with PeakMemory(torch.device("cpu"), interval=0.001) as memory:
        start = memory.peak_mib
        block = np.ones(300 * 2 ** 20, np.uint8)  # touched pages: really resident
        block[::4096] = 2
        time.sleep(0.05)  # let the sampler see it
        del block
    assert memory.kind == "RSS"
    assert memory.peak_mib >= start + 250


def test_matmul_peak_is_measured():
    peak = matmul_peak_gflops(torch.device("cpu"), size=256, seconds=0.2)
    # GFLOP/s, not FLOP/s or TFLOP/s: between a frozen machine (10 MFLOP/s) and what any core can do (64 fp32
    # FLOP per cycle, two AVX-512 FMAs, at 6 GHz). Timing against a second measurement is left out: on a
    # crowded machine two runs a moment apart differ by 100x.
    assert 0.01 < peak < os.cpu_count() * 64 * 6.0


def test_top_ops_find_where_the_time_goes():
    a, b = torch.randn(384, 384), torch.randn(384, 8)

    def step():
        for _ in range(8):
            a @ a  # the big product: most of the time
        (b + 1).sum()

    ops = top_ops(step, 2, torch.device("cpu"))
    assert 1 <= len(ops) <= 5 and ops[0]["op"] in ("aten::mm", "aten::matmul")
    assert ops[0]["share"] > 0.5 and sum(op["share"] for op in ops) <= 1 + 1e-9
    assert [op["share"] for op in ops] == sorted((op["share"] for op in ops), reverse=True)
    assert all(op["ms_per_step"] >= 0 for op in ops)


def test_training_is_measured_in_float32_and_the_faster_precision():
    from facelab.train.precision import amp_dtype

    precisions = train_precisions(torch.device("cpu"))
    assert precisions[0] == "off"
    assert precisions == (("off", "auto") if amp_dtype(torch.device("cpu"), "auto") is not None else ("off",))


@pytest.fixture(scope="module")
def extract_report():
    return run_benchmarks("extract", [torch.device("cpu")], quick=True)


def test_extract_row(extract_report):
    row, = extract_report.rows
    assert (row.bench, row.unit, row.device, row.memory, row.precision) == ("extract", "frames/s", "cpu", "RSS",
                                                                             "fp32")
    assert row.iterations == 6 and row.extra["faces"] == 6  # the src woman is found in every frame
    assert 0 < row.q1_ms <= row.median_ms <= row.q3_ms
    assert row.rate == pytest.approx(1000 / row.median_ms, rel=0.5)
    assert row.gflops is None  # FLOP/s are counted for training only
    assert row.peak_mib > 100  # detector + landmark models are loaded
    assert extract_report.matmul_peak_gflops == {}  # measured only when training is benchmarked
    machine = extract_report.machine
    assert machine["cpu_cores"] == os.cpu_count() and machine["torch_threads"] == torch.get_num_threads()
    assert machine["torch"] == torch.__version__ and machine["load_average_end"] >= 0


def test_table_and_json(extract_report, tmp_path):
    lines = format_table(extract_report)
    assert lines[0].split()[:4] == ["bench", "setting", "device", "prec"]
    assert lines[2].startswith("extract  retinaface 640x360 cpu")
    assert any("quick run" in line for line in lines)
    row = extract_report.rows[0]
    cells = lines[2].split()
    assert float(cells[5]) == pytest.approx(row.rate, abs=0.01) and cells[6] == "frames/s"
    assert float(cells[7]) == pytest.approx(row.median_ms, abs=0.1)
    assert cells[8] == f"{row.q1_ms:.1f}-{row.q3_ms:.1f}" and int(cells[9]) == row.iterations
    save(extract_report, tmp_path / "bench.json")
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["quick"] is True and data["rows"][0]["setting"] == "retinaface 640x360"
    assert data["rows"][0] == dataclasses.asdict(row) and data["machine"] == extract_report.machine


def test_unknown_benchmark():
    with pytest.raises(ValueError):
        run_benchmarks("everything", [torch.device("cpu")])


def test_cli_rejects_unknown_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "everything"])
    assert exit_info.value.code == 2
    assert "everything" in capsys.readouterr().err
