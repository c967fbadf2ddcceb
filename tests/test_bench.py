"""`facelab bench` behaviour (not speed): devices, peak memory, the table and bench.json on a real extract run."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from facelab.bench.measure import PeakMemory, matmul_peak_gflops
from facelab.bench.runner import bench_devices, format_table, run_benchmarks, save
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
    assert matmul_peak_gflops(torch.device("cpu"), size=256, seconds=0.2) > 0.1


@pytest.fixture(scope="module")
def extract_report():
    return run_benchmarks("extract", [torch.device("cpu")], quick=True)


def test_extract_row(extract_report):
    row, = extract_report.rows
    assert (row.bench, row.unit, row.device, row.memory) == ("extract", "frames/s", "cpu", "RSS")
    assert row.iterations == 6 and row.extra["faces"] == 6  # the src woman is found in every frame
    assert row.q1_ms <= row.median_ms <= row.q3_ms
    assert row.rate == pytest.approx(1000 / row.median_ms, rel=0.5)
    assert row.peak_mib > 100  # detector + landmark models are loaded
    assert extract_report.matmul_peak_gflops == {}  # measured only when training is benchmarked


def test_table_and_json(extract_report, tmp_path):
    lines = format_table(extract_report)
    assert lines[0].split()[:4] == ["bench", "setting", "device", "prec"]
    assert lines[2].startswith("extract  retinaface 640x360 cpu")
    assert any("quick run" in line for line in lines)
    save(extract_report, tmp_path / "bench.json")
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["quick"] is True and data["rows"][0]["setting"] == "retinaface 640x360"


def test_unknown_benchmark():
    with pytest.raises(ValueError):
        run_benchmarks("everything", [torch.device("cpu")])


def test_cli_rejects_unknown_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "everything"])
    assert exit_info.value.code == 2
    assert "everything" in capsys.readouterr().err
