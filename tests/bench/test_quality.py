"""`facelab bench quality` on the real demo videos, cut to their first frames: a tiny real run of the demo's SAE
writes the table, quality.json with consistent figures, the PNG plot and the swaps; configurations that cannot run
are skipped with the reason."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from facelab.bench import plot
from facelab.bench.holdout import prepare
from facelab.bench.quality import CONFIGS, QualityConfig, segment_ends, unavailable
from facelab.cli import cli
from facelab.io.faceimage import list_faces, read_meta

FRAMES, MINUTES, CHECKPOINTS = 30, 0.05, 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality") / "bench"
    result = CliRunner().invoke(cli, ["bench", "quality", "--configs", "sae-demo", "--minutes", str(MINUTES),
                                      "--checkpoints", str(CHECKPOINTS), "--frames", str(FRAMES), "-o", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, result.output, json.loads((out / "quality.json").read_text())


def test_table_on_screen(run):
    _, output, report = run
    row = next(line for line in output.splitlines() if line.startswith("sae-demo "))
    assert len(row.split()) == 12  # name, six measures, iterations, ms/it, budget, CPU and wall minutes
    assert int(row.split()[7]) == report["configs"][0]["iterations"]
    assert "best (highest held-out SSIM): sae-demo" in output


def test_json_figures_are_consistent(run):
    _, _, report = run
    assert (report["minutes"], report["checkpoints"], report["seed"], report["best"]) == (MINUTES, CHECKPOINTS, 0,
                                                                                         "sae-demo")
    assert report["run_options"]["workers"] == 0  # sampling in the measured process
    config, = report["configs"]
    assert config["skipped"] is None and (config["model"], config["face_type"], config["resolution"]) == \
        ("SAE", "full", 64)
    curve = config["curve"]
    assert len(curve) == CHECKPOINTS and curve[-1]["iteration"] == config["iterations"] >= 1
    assert [p["iteration"] for p in curve] == sorted(p["iteration"] for p in curve)
    assert [p["budget_minutes"] for p in curve] == sorted(p["budget_minutes"] for p in curve)
    assert {k: curve[-1][k] for k in config["final"]} == config["final"]
    assert curve[-1]["budget_minutes"] == pytest.approx(config["budget_minutes"])
    if config["stopped_by"] != "time":  # stopped by its budget, not by the wall-time cap of a crowded machine
        assert config["budget_minutes"] >= MINUTES
    threads = report["machine"]["torch_threads"]
    assert config["cpu_minutes"] == pytest.approx(config["budget_minutes"] * threads)
    assert config["budget_ms_per_iteration"] == pytest.approx(60000 * config["budget_minutes"] / config["iterations"])
    final = config["final"]
    assert -1 <= final["ssim"] < 0.9 and 5 < final["psnr"] < 40  # an untrained model redraws badly, not perfectly
    assert 0 < final["to_src"] < 1.5 and 0 < final["to_dst"] < 1.5 and 0 <= final["nearer_to_src"] <= 1
    assert 0 <= final["sharpness"] < 1 and final["expression_error"] >= 0
    data = report["data"]
    assert final["src_faces"] == min(32, data["src"]["faces"]["holdout"]) > 0
    assert final["dst_faces"] == min(32, data["dst"]["faces"]["holdout"]) > 0
    ref = report["reference"]["full 64"]
    # The measures know who is who: the real held-out woman is src, the real held-out man is not.
    assert ref["real_src"]["to_src"] < 0.6 < ref["real_dst"]["to_src"]
    assert ref["real_dst"]["to_dst"] < 0.6 < ref["real_src"]["to_dst"]


def test_held_out_faces_come_from_the_held_out_block_only(run):
    out, _, report = run
    data = prepare(out, max_frames=FRAMES)  # cached: nothing is extracted again
    for side in ("src", "dst"):
        split = report["data"][side]
        assert split["train_last"] < split["holdout_first"] and split["holdout_last"] == FRAMES
        for part, first, last in (("train", 1, split["train_last"]),
                                  ("holdout", split["holdout_first"], split["holdout_last"])):
            faces = list_faces(data.folder(side, part))
            assert len(faces) == split["faces"][part] > 0
            frames = {int(read_meta(p).source_filename.split(".")[0]) for p in faces}
            assert first <= min(frames) and max(frames) <= last


def test_plot_and_swaps_are_written(run):
    out, _, report = run
    figure = cv2.imread(str(out / "quality.png"))
    assert figure.shape[1] == 2 * plot.PANEL_W
    assert np.array_equal(figure, plot.quality_figure(report))  # the picture of exactly this report
    swaps = cv2.imread(str(out / "swaps.png"))
    faces = min(8, report["configs"][0]["final"]["dst_faces"])
    assert swaps.shape == (2 * 96, plot.NAME_W + faces * 96, 3)  # a row of dst faces, a row of their swaps


def test_configurations_that_cannot_run_say_why():
    assert "not in this facelab" in unavailable(QualityConfig("x", "NoSuchModel", {}, ""))
    assert "has no option warp_drive" in unavailable(QualityConfig("x", "SAE", {"warp_drive": 1}, ""))
    assert unavailable(CONFIGS.get("sae-demo")) is None
    assert {"sae-demo", "saehd", "quick96", "saehd-eyes", "saehd-gan"} <= set(CONFIGS.names())


def test_phases_split_the_budget():
    gan = CONFIGS.get("saehd-gan")
    assert segment_ends(4, gan) == [0.25, 0.5, 0.75, 0.8, 1.0]
    assert "gan_power" not in gan.options_at(0.75) and gan.options_at(0.8)["gan_power"] == 0.1
    assert segment_ends(1, CONFIGS.get("sae-demo")) == [1.0]


def test_unknown_configuration_is_refused_with_a_hint(run_cli):
    result = run_cli("bench", "quality", "--configs", "sae-dmeo")
    assert result.code == 2 and "did you mean 'sae-demo'" in result.err
