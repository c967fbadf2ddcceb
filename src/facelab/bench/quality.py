"""`facelab bench quality`: the swap's quality on held-out faces after the same training budget, per configuration.

Each configuration (a model and its options, optionally changed for the last part of the budget) trains from
scratch on the training part of the demo facesets (``bench.holdout``) with the same seed, and is scored on the
held-out part (``bench.evaluate``) at a few checkpoints, the last at the end of the budget.

The budget is CPU time: the training process's CPU time ÷ its torch threads, counted only while the training
loop runs (not while faces load, the model saves or the benchmark scores). On a quiet machine that is about the
wall time; when other processes compete for the cores it still gives every configuration the same work time.
On a GPU the budget is wall time. Sample preparation runs in the training process (``workers`` 0), so all of
its CPU time is counted and the run is repeatable.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from facelab.bench.evaluate import Evaluator
from facelab.bench.holdout import BenchData, prepare
from facelab.bench.measure import machine_info
from facelab.errors import FacelabError
from facelab.io.files import write_bytes_atomic, write_json_atomic
from facelab.pipeline import MODEL_NAME as DEMO_MODEL, MODEL_OPTIONS as DEMO_OPTIONS, TRAIN_PHASES as DEMO_PHASES
from facelab.progress import ProgressCallback, no_progress
from facelab.registry import Registry
from facelab.score.runner import json_safe

log = logging.getLogger(__name__)

JSON_NAME, PLOT_NAME, SWAPS_NAME = "quality.json", "quality.png", "swaps.png"
CHECKPOINTS = 4
SEED = 0
# A configuration stops after WALL_CAP times its budget + WALL_SLACK seconds of wall time, however busy the machine.
WALL_CAP, WALL_SLACK = 3.0, 60.0
# What every configuration's runs get: no saves inside the budget, sampling in the process (counted, exact).
BENCH_RUN_OPTIONS: dict[str, Any] = {"workers": 0, "save_minutes": 600.0}
# Measures, how they read, and which way is better (+1 higher, -1 lower, 0 closest to 1).
MEASURES: tuple[tuple[str, str, int], ...] = (
    ("ssim", "src->src SSIM in the mask", +1),
    ("psnr", "src->src PSNR in the mask, dB", +1),
    ("to_src", "swap distance to src (dlib)", -1),
    ("to_dst", "swap distance to dst (dlib)", +1),
    ("sharpness", "swap sharpness / real src", 0),
    ("expression_error", "swap landmark error vs dst, IOD", -1),
)


@dataclass(frozen=True)
class QualityConfig:
    """A model with options; ``phases`` change options from a share of the budget on, e.g. ((0.8, {"gan_power":
    0.1}),) turns the GAN on for the last fifth."""

    name: str
    model: str
    options: dict[str, Any]
    description: str
    phases: tuple[tuple[float, dict[str, Any]], ...] = ()

    def options_at(self, share: float) -> dict[str, Any]:
        """The options for training from ``share`` (0..1) of the budget on."""
        out = dict(self.options)
        for start, changes in sorted(self.phases, key=lambda p: p[0]):
            if share >= start - 1e-9:
                out.update(changes)
        return out


CONFIGS: Registry[QualityConfig] = Registry("quality configuration")
_SAEHD_SHORT = {"resolution": 64, "archi": "df-ud", "ae_dims": 128, "e_dims": 32, "d_dims": 32, "mask_dims": 16,
                "batch_size": 4, "learning_rate": 2e-4}
for _config in (
    # The demo's nets with random warp all along: the demo before its late step, the baseline to beat.
    QualityConfig("sae-demo", DEMO_MODEL, {**DEMO_OPTIONS, "learning_rate": 1e-4},
                  "SAE df 64 px, ae 128, e/d 21/11, mask 16, batch 4, lr 1e-4, random warp throughout"),
    # The demo's recipe on 2026-12-02: sae-demo with DeepFaceLab 2's late step (random warp off for the last
    # 40 %). Beside sae-demo in one run (fp32, quiet 2-core AVX2, 10 min): 3,017 it, SSIM 0.733, PSNR 21.25, to
    # src/dst 0.411/0.830, sharpness 0.205, expression 0.067 (sae-demo: 3,176 it, 0.644, 19.82, 0.443/0.825,
    # 0.170, 0.070) — better on every measure.
    QualityConfig("sae-sharpen", DEMO_MODEL, {**DEMO_OPTIONS, "learning_rate": 1e-4},
                  "sae-demo, random warp off for the last 40 %", phases=DEMO_PHASES),
    QualityConfig("sae-lr2", DEMO_MODEL, {**DEMO_OPTIONS, "learning_rate": 2e-4}, "sae-demo at lr 2e-4"),
    # The demo's recipe since 2026-12-03: sae-sharpen at a 3× learning rate. Beside it in one run (fp32, 2-core
    # AVX2, 10 min, ~550 it): SSIM 0.622 vs 0.621, PSNR 19.60 vs 18.76, to src/dst 0.531/0.825 vs 0.506/0.802,
    # sharpness 0.165 vs 0.096, expression 0.082 vs 0.083; a day before (bf16, ~1,600 it) SSIM 0.706 vs 0.697,
    # to src 0.413 vs 0.505, sharpness 0.167 vs 0.177.
    QualityConfig("sae-lr3-sharpen", DEMO_MODEL, DEMO_OPTIONS, "the demo: sae-sharpen at lr 3e-4",
                  phases=DEMO_PHASES),
    # That rate stepped down as the warp goes off and again near the end (the steps DeepFaceLab users take by hand,
    # compressed into the budget). Same run: SSIM 0.617, PSNR 19.58, to src 0.540, sharpness 0.144, expression 0.089.
    QualityConfig("sae-lr3-steps", DEMO_MODEL, DEMO_OPTIONS,
                  "sae-sharpen at lr 3e-4, 1.5e-4 once the warp is off, 5e-5 for the last 15 %",
                  phases=((DEMO_PHASES[0][0], {**DEMO_PHASES[0][1], "learning_rate": 1.5e-4}),
                          (0.85, {"learning_rate": 5e-5}))),
    QualityConfig("saehd", "SAEHD", {}, "SAEHD with its defaults"),
    QualityConfig("quick96", "Quick96", {}, "Quick96 (96 px full face, df-ud)"),
    QualityConfig("saehd-eyes", "SAEHD", {"eyes_mouth_prio": True}, "SAEHD defaults + eyes and mouth priority"),
    QualityConfig("saehd-gan", "SAEHD", {}, "SAEHD defaults, GAN power 0.1 in the last 20 % of the budget",
                  phases=((0.8, {"gan_power": 0.1}),)),
    # SAEHD at the demo's 64 px: its recipe (-ud, eyes/mouth priority) at a cost near the old demo's. Before the
    # sub-pixel (ICNR) init: 1,416 it, SSIM 0.490, grid artefacts in its swaps.
    QualityConfig("saehd-64", "SAEHD", {"resolution": 64, "archi": "df-ud", "ae_dims": 128, "e_dims": 32,
                                        "d_dims": 32, "mask_dims": 16, "eyes_mouth_prio": True, "batch_size": 4},
                  "SAEHD df-ud 64 px, ae 128, e/d 32/32, mask 16, batch 4, eyes and mouth priority"),
    # SAEHD's short-budget CPU recipe: saehd-64's nets, a 4× learning rate, no eyes/mouth priority (its 300·L1
    # term dominates the early gradient and, at higher rates, saturates the output into a flat face). Measured
    # 2026-12-02 beside sae-demo in one run, fp32, a quiet 2-core AVX2 machine, 10 min: 5,354 it, SSIM 0.607,
    # PSNR 19.54, to src/dst 0.489/0.781, sharpness 0.123, expression 0.067 (sae-demo: 2,872 it, 0.670, 20.07,
    # 0.471/0.833, 0.170, 0.078).
    QualityConfig("saehd-short", "SAEHD", _SAEHD_SHORT,
                  "SAEHD df-ud 64 px, ae 128, e/d 32/32, mask 16, batch 4, lr 2e-4, no eyes/mouth priority"),
    # saehd-short, then DeepFaceLab's late-training step early: random warp off for the last 40 % of the budget,
    # so the decoders spend it on detail rather than on undoing the warp. Same run: 5,531 it, SSIM 0.713 (the
    # best), PSNR 21.04, sharpness 0.169, but to src/dst 0.508/0.759 and expression 0.081: a truer redraw of
    # src, a swap less like her.
    QualityConfig("saehd-sharpen", "SAEHD", _SAEHD_SHORT,
                  "saehd-short, random warp off for the last 40 % of the budget", phases=DEMO_PHASES),
    # SAEHD sized for a CPU: Quick96's face and widths, with SAEHD's recipe and eyes/mouth priority. Before the
    # sub-pixel (ICNR) init: 257 it, SSIM 0.211 flat, its swaps a fixed noise texture (the untrained -d decoder's).
    QualityConfig("saehd-cpu", "SAEHD", {"resolution": 96, "archi": "df-ud", "ae_dims": 128, "e_dims": 64,
                                         "d_dims": 64, "mask_dims": 16, "eyes_mouth_prio": True, "batch_size": 4},
                  "SAEHD df-ud 96 px, ae 128, e/d 64/64, mask 16, batch 4, eyes and mouth priority"),
):
    CONFIGS.register(_config.name)(_config)


def unavailable(config: QualityConfig) -> str | None:
    """Why ``config`` cannot run in this facelab (its model is not registered, or lacks an option), else None."""
    from facelab.train.models import MODELS
    from facelab.train.models.build import option_specs

    if config.model not in MODELS:
        return f"model {config.model} is not in this facelab (models: {', '.join(MODELS.names())})"
    known = {o.name for o in option_specs(config.model)}
    wanted = {*config.options, *(k for _, changes in config.phases for k in changes)}
    missing = sorted(wanted - known)
    return f"{config.model} has no option {', '.join(missing)}" if missing else None


class BudgetClock:
    """Training time, counted from one ``tick`` to the next within a segment (the trainer asks ``should_stop``
    before every iteration, so the ticks bracket the iterations and nothing else)."""

    def __init__(self, cpu: bool):
        self.cpu_budget = cpu
        self.threads = torch.get_num_threads()
        self.cpu = self.wall = 0.0
        self._mark: tuple[float, float] | None = None

    def begin_segment(self) -> None:
        self._mark = None

    def tick(self) -> float:
        now = (time.process_time(), time.perf_counter())
        if self._mark is not None:
            self.cpu += now[0] - self._mark[0]
            self.wall += now[1] - self._mark[1]
        self._mark = now
        return self.spent

    @property
    def spent(self) -> float:
        """Seconds of budget used: CPU seconds ÷ torch threads (a CPU budget) or wall seconds."""
        return self.cpu / self.threads if self.cpu_budget else self.wall


@dataclass
class ConfigResult:
    name: str
    model: str
    description: str
    options: dict[str, Any]
    skipped: str | None = None
    face_type: str = ""
    resolution: int = 0
    iterations: int = 0
    budget_minutes: float = 0.0  # CPU minutes (÷ threads) on the CPU, wall minutes on a GPU
    cpu_minutes: float = 0.0  # CPU time of the training process, all threads
    wall_minutes: float = 0.0
    ms_per_iteration: float = float("nan")  # median wall ms of one training step
    budget_ms_per_iteration: float = float("nan")  # budget time ÷ iterations
    stopped_by: str = ""
    final: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    swaps: np.ndarray | None = field(default=None, repr=False)  # held-out swaps at the end (not saved in JSON)


def cpu_budget(device: str) -> bool:
    """Whether training on ``device`` is budgeted in CPU time (the CPU) or in wall time (a GPU)."""
    from facelab.device import resolve_devices

    return resolve_devices(device)[0].type == "cpu"


def segment_ends(checkpoints: int, config: QualityConfig) -> list[float]:
    """Shares of the budget where training pauses: each checkpoint's and each phase's start (sorted, last 1)."""
    ends = {round(k / checkpoints, 6) for k in range(1, checkpoints + 1)}
    ends |= {round(start, 6) for start, _ in config.phases if 0 < start < 1}
    return sorted(ends)


def train_config(config: QualityConfig, data: BenchData, evaluator: Evaluator, work_dir: Path, *, minutes: float,
                 checkpoints: int, device: str, progress: ProgressCallback = no_progress) -> ConfigResult:
    """Train ``config`` from scratch in ``work_dir`` for ``minutes`` of budget, scoring it at each checkpoint."""
    from facelab.train.swap import Swapper
    from facelab.train.trainer import train_model

    result = ConfigResult(config.name, config.model, config.description, config.options_at(1.0))
    clock = BudgetClock(cpu=cpu_budget(device))
    budget = minutes * 60.0
    step_ms: list[float] = []

    def on_iteration(report: Any) -> None:
        clock.tick()  # also here: a run stopped by its wall-time cap asks should_stop no more
        if report.event is None and report.ms > 0:
            step_ms.append(report.ms)

    checkpoint_at = {round(k / checkpoints, 6) for k in range(1, checkpoints + 1)}
    start = 0.0
    for end in segment_ends(checkpoints, config):
        clock.begin_segment()
        done = train_model(work_dir, data.folder("src", "train"), data.folder("dst", "train"), config.model,
                           config.options_at(start), run_options=BENCH_RUN_OPTIONS, device=device, seed=SEED,
                           progress=progress,
                           max_seconds=max(1.0, WALL_CAP * budget + WALL_SLACK - clock.wall),
                           should_stop=lambda until=end * budget: clock.tick() >= until, on_iteration=on_iteration)
        result.iterations, result.stopped_by = done.iteration, done.stopped_by
        start = end
        if end in checkpoint_at or done.stopped_by == "time":
            swapper = Swapper.load(work_dir, config.model, device=device)
            result.face_type, result.resolution = swapper.face_type, swapper.resolution
            measures, swaps = evaluator.evaluate(swapper)
            result.curve.append({"budget_minutes": clock.spent / 60, "wall_minutes": clock.wall / 60,
                                 "iteration": done.iteration, **measures})
            result.final, result.swaps = measures, swaps
        if done.stopped_by == "time":
            log.warning("%s: stopped by its wall-time cap (the machine is busy)", config.name)
            break
    result.budget_minutes, result.cpu_minutes, result.wall_minutes = clock.spent / 60, clock.cpu / 60, clock.wall / 60
    result.ms_per_iteration = float(np.median(step_ms)) if step_ms else float("nan")
    result.budget_ms_per_iteration = 1000 * clock.spent / result.iterations if result.iterations else float("nan")
    return result


def best_of(results: list[ConfigResult]) -> ConfigResult | None:
    """The configuration with the highest held-out src→src SSIM (None when none ran)."""
    ran = [r for r in results if r.final]
    return max(ran, key=lambda r: r.final["ssim"]) if ran else None


def run_quality(output: Path, configs: list[str] | None = None, *, minutes: float = 10.0,
                checkpoints: int = CHECKPOINTS, device: str = "cpu", max_frames: int | None = None,
                on_line: Callable[[str], None] = log.info, progress: ProgressCallback = no_progress
                ) -> dict[str, Any]:
    """Run the quality benchmark into the folder ``output``: ``quality.json``, ``quality.png`` and ``swaps.png``
    (written again after each configuration). Returns the JSON document."""
    output = Path(output)
    chosen = [CONFIGS.get(name) for name in (configs or CONFIGS.names())]
    on_line(f"Preparing the held-out facesets in {output} (extracted once, then reused)")
    data = prepare(output, max_frames=max_frames, progress=progress)
    evaluator = Evaluator(data)
    report: dict[str, Any] = {"machine": machine_info(), "minutes": minutes, "checkpoints": checkpoints,
                              "seed": SEED, "device": device, "run_options": BENCH_RUN_OPTIONS,
                              "budget": "CPU time / torch threads" if cpu_budget(device) else "wall time",
                              "data": data.describe(), "reference": {}, "configs": [], "best": None}
    results: list[ConfigResult] = []
    for config in chosen:
        why = unavailable(config)
        if why is None:
            on_line(f"{config.name}: {config.description}; training {minutes:g} min from scratch")
            try:
                with tempfile.TemporaryDirectory(prefix=f".{config.name}-", dir=output) as work:
                    results.append(train_config(config, data, evaluator, Path(work), minutes=minutes,
                                                checkpoints=checkpoints, device=device, progress=progress))
            except FacelabError as err:
                why = f"failed: {err}"
        if why is not None:
            on_line(f"{config.name}: skipped — {why}")
            results.append(ConfigResult(config.name, config.model, config.description, config.options_at(1.0),
                                        skipped=why))
        elif results[-1].curve:
            on_line(f"{config.name}: {results[-1].iterations} iterations, " + ", ".join(
                f"{key} {results[-1].final[key]:.3f}" for key, _, _ in MEASURES))
        _add_reference(report, evaluator, results[-1])
        _write(output, report, results, evaluator)
    return report


def _cell(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def format_table(report: dict[str, Any]) -> list[str]:
    """The quality report as aligned text lines: one row per configuration, then the reference numbers."""
    w = max([11, *(len(c["name"]) for c in report["configs"])])
    head = (f"{'config':{w}s} {'SSIM':>6s} {'PSNR':>6s} {'to src':>6s} {'to dst':>6s} {'sharp':>6s} {'expr':>6s} "
            f"{'iters':>6s} {'ms/it':>7s} {'budget':>7s} {'CPU':>7s} {'wall':>7s}")
    lines = [head, "-" * len(head)]
    for c in report["configs"]:
        if c["skipped"]:
            lines.append(f"{c['name']:{w}s} skipped: {c['skipped']}")
            continue
        f = c["final"]
        lines.append(f"{c['name']:{w}s} {_cell(f.get('ssim'), 3):>6s} {_cell(f.get('psnr'), 2):>6s} "
                     f"{_cell(f.get('to_src'), 3):>6s} {_cell(f.get('to_dst'), 3):>6s} "
                     f"{_cell(f.get('sharpness'), 3):>6s} {_cell(f.get('expression_error'), 3):>6s} "
                     f"{c['iterations']:6d} {_cell(c['ms_per_iteration'], 0):>7s} "
                     f"{_cell(c['budget_minutes'], 2):>6s}m {_cell(c['cpu_minutes'], 2):>6s}m "
                     f"{_cell(c['wall_minutes'], 2):>6s}m")
    lines.append("SSIM/PSNR: src->src in the face mask (higher is better); to src / to dst: dlib distance of the "
                 "swap (lower / higher is better; < 0.6 = same person); sharp: swap detail / real src (1 = as real); "
                 "expr: landmark error against dst in eye distances (lower is better); budget = CPU ÷ "
                 "torch threads.")
    for kind, ref in report["reference"].items():
        lines.append(f"reference at {kind}: real src faces to src {ref['real_src']['to_src']:.3f} / to dst "
                     f"{ref['real_src']['to_dst']:.3f}; real dst faces (no swap) to src {ref['real_dst']['to_src']:.3f}"
                     f" / to dst {ref['real_dst']['to_dst']:.3f}")
    lines.append(f"best (highest held-out SSIM): {report['best']}")
    return lines


def _add_reference(report: dict[str, Any], evaluator: Evaluator, result: ConfigResult) -> None:
    """The no-model reference numbers at the face type and size of ``result`` (once per kind)."""
    key = f"{result.face_type} {result.resolution}"
    if result.curve and key not in report["reference"]:
        report["reference"][key] = evaluator.reference(result.face_type, result.resolution)


def _write(output: Path, report: dict[str, Any], results: list[ConfigResult], evaluator: Evaluator) -> None:
    from facelab.bench import plot

    best = best_of(results)
    report["best"] = best.name if best else None
    report["configs"] = [{f.name: getattr(r, f.name) for f in fields(r) if f.name != "swaps"} for r in results]
    write_json_atomic(output / JSON_NAME, json_safe(report))
    write_bytes_atomic(output / PLOT_NAME, plot.encode_png(plot.quality_figure(report)))
    ran = [r for r in results if r.swaps is not None]
    if ran:
        dst = evaluator.held_out("dst", ran[0].face_type, ran[0].resolution).faces
        figure = plot.swaps_figure(dst, [(r.name, r.swaps) for r in ran])
        write_bytes_atomic(output / SWAPS_NAME, plot.encode_png(figure))
