"""`facelab bench train`'s measuring parts: every standard setting builds its model, steps are timed in wall and
CPU time with the model's own optimizer, and the table's "% CPU" compares CPU time with the matmul's."""

from __future__ import annotations

import os
import time

import pytest
import torch

from facelab.bench import stages
from facelab.bench.measure import machine_info, matmul_peak_gflops
from facelab.bench.runner import BenchReport, format_table
from facelab.options import validate
from facelab.train import bench
from facelab.train.models import MODELS
from facelab.train.optim import new_adam

TINY_SAEHD = {"archi": "df-ud", "resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "mask_dims": 16}


def tiny():
    """The smallest SAEHD (AdaBelief by default), freshly initialised from seed 0."""
    torch.manual_seed(0)
    cls = MODELS.get("SAEHD")
    return cls(validate(cls.option_specs, TINY_SAEHD))


@pytest.fixture(scope="module")
def batches(src_video, dst_video):
    """Two real training batches of one 64 px full face per side."""
    src, dst = (bench.to_batch_tensors(*bench.demo_faces(video, 2, 64, "full")) for video in (src_video, dst_video))
    return [bench.training_batch(src, dst, torch.tensor([i])) for i in range(2)]


def test_every_setting_is_valid_for_its_model():
    assert {"df64", "liae128", "saehd df64", "saehd liae128", "saehd df-ud128", "saehd liae-ud128"} <= set(
        stages.TRAIN_SETTINGS)
    for setting in stages.TRAIN_SETTINGS.values():
        cls = MODELS.get(setting.model)
        options = validate(cls.option_specs, setting.options)
        assert {k: options[k] for k in setting.options} == setting.options
    saehd = stages._model("saehd df64", torch.device("cpu"))  # the smallest SAEHD setting; the others take long
    assert type(saehd).__name__ == "SAEHD"
    first = saehd.net.encoder.body.blocks[0].conv
    assert (first.out_channels, saehd.resolution) == (32, 64)  # SAEHD's e_dims count channels, as DeepFaceLab's do
    assert stages.TRAIN_SETTINGS["saehd df64"].deepfacelab_ms == stages.TRAIN_SETTINGS["df64"].deepfacelab_ms


def test_timed_steps_record_wall_and_cpu_time_and_the_same_losses(batches):
    log = bench.timed_steps(tiny(), batches, factory=new_adam)
    seconds, losses = bench.train_steps(tiny(), batches)
    assert log.losses == losses  # same seed, same steps: the timing adds nothing to the maths
    assert len(log.seconds) == len(log.cpu_seconds) == len(seconds) == 2
    for wall, cpu in zip(log.seconds, log.cpu_seconds):
        # CPU time of this process: more than nothing, at most every torch thread busy the whole step (plus the
        # odd helper thread's share).
        assert 0 < cpu <= wall * (torch.get_num_threads() + 1)


def test_timed_steps_train_with_the_models_own_optimizer(batches):
    own = bench.timed_steps(tiny(), batches)  # AdaBelief at SAEHD's defaults
    adam = bench.timed_steps(tiny(), batches, factory=new_adam)
    assert own.losses[0] == adam.losses[0]  # the same model before any step
    assert own.losses[1] != adam.losses[1]


def test_a_runner_keeps_its_optimizer_so_profiled_steps_are_steady_state(batches):
    runner = bench.StepRunner(tiny())
    log = runner.run(batches)
    wall, cpu, loss = runner(batches[0])  # one more step, as the table's top ops are profiled
    assert type(runner.optimizer).__name__ == "AdaBelief"
    assert {int(s["step"]) for s in runner.optimizer.state.values()} == {3}  # moments carried on, not re-created
    assert wall > 0 and cpu > 0 and loss != log.losses[0]


def test_cpu_share_of_a_measured_step(batches):
    model = tiny()
    log = bench.timed_steps(model, batches)
    flops = model.flops_per_iteration(1, swap=True)
    per_cpu = matmul_peak_gflops(torch.device("cpu"), size=512, seconds=0.2, clock=time.process_time)
    assert 0.01 < per_cpu < (os.cpu_count() or 1) * 64 * 6.0  # GFLOP per CPU-second, as for the wall clock
    row = stages.BenchRow("train", "tiny", "tiny SAEHD", "cpu", 1, 1.0, "samples/s", 1000 * log.seconds[1], 0.0, 0.0,
                          0.0, "RSS", gflops=flops / 1e9 / log.seconds[1],
                          extra={"gflop_per_step": flops / 1e9, "cpu_ms": 1000 * log.cpu_seconds[1]})
    report = BenchReport(machine_info(), {"cpu fp32": 1e6}, [row], matmul_peak_cpu_gflops={"cpu fp32": per_cpu})
    lines = format_table(report)
    assert lines[0].endswith("% peak  % CPU")
    expected = 100 * flops / 1e9 / log.cpu_seconds[1] / per_cpu
    assert lines[2].split()[-1] == f"{expected:.0f}%"
    assert any(line.startswith("matmul peak on cpu fp32") and "GFLOP per CPU-second" in line for line in lines)
    without = format_table(BenchReport(machine_info(), {"cpu fp32": 1e6}, [row]))
    assert without[2].split() == lines[2].split()[:-1]  # no CPU-time peak measured: the cell stays blank
