"""`facelab bench extract|train|merge|all`: speed at fixed standard settings, printed as a table + bench.json;
`facelab bench quality`: the swap's quality on held-out faces after a fixed training budget, per configuration;
`facelab bench live`: the live stream's frames/s, latency, dropped frames, memory and jitter on the demo dst clip;
`facelab bench export`: ms per face at batch 1, the exported graph in onnxruntime (CPU) against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, workspace_flag, yes_option


@click.command("bench")
@click.argument("which", type=click.Choice(["extract", "train", "merge", "all", "quality", "live", "xseg",
                                                     "export"]),
                default="all",
                required=False)
@click.option("--device", default=None,
              help="auto = the CPU, and the GPU with most free memory when there is one; or cpu, cuda, cuda:N, all. "
                   "[default: auto; cpu for quality]")
@click.option("--quick", is_flag=True, help="A few iterations only: a smoke run, not numbers to compare.")
@workspace_flag(None, "The folder the results go into (bench.json, bench_quality/) [default: the current folder]; "
                     "the benchmark reads only the packaged demo media.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Speed: the JSON file [default: WORKSPACE/bench.json]. Quality: the folder for quality.json, "
                   "quality.png, swaps.png and the cached facesets [default: WORKSPACE/bench_quality].")
@click.option("--minutes", type=click.FloatRange(0.01, 24 * 60), default=None,
              help="Quality: training budget per configuration (CPU minutes ÷ torch threads on the CPU) "
                   "[default: 10]. Live: minutes of streaming [default: 0.5; 10 shows whether memory stays flat].")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="Live: the model to swap with, a model folder or an exported .onnx/.dfm [default: the demo's SAE "
                   "untrained; speed does not depend on training]. Export: a model folder, exported to a temp "
                   "folder and timed.")
@click.option("--configs", default=None, help="Quality: comma-separated configurations [default: all of them].")
@click.option("--checkpoints", type=click.IntRange(1, 20), default=4, show_default=True,
              help="Quality: times each configuration is scored during its budget (for the curves; the last is "
                   "the end).")
@click.option("--frames", type=click.IntRange(10), default=None,
              help="Quality: use only the first frames of each demo video (a smoke run) [default: all].")
@click.option("--accuracy", is_flag=True, help="XSeg: also train and score it on occluded demo faces (--minutes "
                                              "of CPU time ÷ torch threads in all [default: 10]).")
@yes_option
def bench(which: str, device: str | None, quick: bool, workspace: Path | None, output: Path | None,
          minutes: float | None, model_dir: Path | None, configs: str | None, checkpoints: int, frames: int | None,
          accuracy: bool, yes: bool) -> None:
    """Measure extract, train and merge speed at fixed settings on the real demo media, or (`quality`) how good
    the swap is after the same training budget.

    The settings are fixed, so numbers compare across machines and versions (no prompts). Per row: frames/s or
    samples/s, median ms per iteration with its interquartile range, peak memory (process RSS on the CPU,
    torch-allocated on a GPU) and, for training, the FLOP/s achieved against the device's matmul peak measured
    in the same run. Training: SAE df 64 px (ae 128, e_ch 32, d_ch 32, learned mask, batch 8) and SAE liae
    128 px (ae 256, e_ch 64, d_ch 64, batch 4), SAEHD at the same two settings and df-ud / liae-ud at its defaults
    (128 px, batch 4), each in float32 and in the faster precision the device has (bf16 on CPUs with AVX-512-BF16
    or AMX), beside DeepFaceLab 2 SAEHD's ms/iteration at the same widths and with the five ops that take the most
    time; on a CPU also "% CPU", the same share in CPU time, which other work on a shared machine does not lower.
    On a CPU these are seconds to minutes per step, so the full run takes long there; --quick is a smoke run.

    `quality` trains every configuration from scratch (same seed, same budget) on the demo facesets without
    their last 20 % of frames, and scores those held-out faces: src->src SSIM and PSNR in the mask, the swap's
    identity (dlib distance to src and to dst), sharpness against real src faces, expression (landmark error
    against dst), iterations and ms/iteration. A configuration whose model is not in this facelab is skipped.

    `live` streams the demo dst clip, looped, through `facelab live` at its frame rate (--minutes of it): frames/s
    sustained, latency median and p95, dropped frames, memory at start and end, and the face's jitter against
    merge's alignment.
    """
    home = workspace or Path()
    if which == "quality":
        _quality(output or home / "bench_quality", device or "cpu", minutes or 10.0, configs, checkpoints, frames)
        return
    if which == "live":
        _live(output or home / "bench_live.json", device or "cpu", minutes or 0.5, model_dir)
        return
    if which == "export":
        _export(output or home / "bench_export.json", model_dir, workspace, quick)
        return
    if which == "xseg":
        _xseg(output or home / "bench_xseg", accuracy, minutes or 10.0, quick)
        return
    from facelab.bench.runner import bench_devices, format_table, run_benchmarks, save

    devices = bench_devices(device or "auto")
    output = output or home / "bench.json"
    click.echo(f"Benchmarking {which} on {', '.join(str(d) for d in devices)}" + (" (quick)" if quick else "")
               + "; other work on this machine slows every number.")
    with ProgressBar() as bar:
        report = run_benchmarks(which, devices, quick=quick, progress=bar,
                                on_row=lambda r: click.echo(f"  {r.bench} {r.setting} on {r.device}: {r.rate:.2f} "
                                                            f"{r.unit}, {r.median_ms:.1f} ms/it"))
    click.echo("")
    for line in format_table(report):
        click.echo(line)
    save(report, output)
    click.echo(f"Results in {output}.")


def _quality(output: Path, device: str, minutes: float, configs: str | None, checkpoints: int,
             frames: int | None) -> None:
    from facelab.bench.quality import CONFIGS, JSON_NAME, PLOT_NAME, SWAPS_NAME, format_table, run_quality

    names = [n.strip() for n in configs.split(",") if n.strip()] if configs else None
    for name in names or []:
        CONFIGS.get(name)  # a wrong name fails before anything runs, with "did you mean"
    click.echo(f"Quality benchmark: {minutes:g} min per configuration on {device}; the whole run takes about "
               f"{len(names or CONFIGS.names()) * minutes:g} min plus scoring. Other work on this machine costs "
               "wall time, not budget.")
    with ProgressBar() as bar:
        report = run_quality(output, names, minutes=minutes, checkpoints=checkpoints, device=device,
                             max_frames=frames, on_line=click.echo, progress=bar)
    click.echo("")
    for line in format_table(report):
        click.echo(line)
    click.echo(f"Results in {output / JSON_NAME}, plot {output / PLOT_NAME}, swaps {output / SWAPS_NAME}.")


def _export(output: Path, model_dir: Path | None, workspace: Path | None, quick: bool) -> None:
    from facelab.bench.export import format_report, run_export_bench
    from facelab.io.files import write_json_atomic
    from facelab.workspace import Workspace

    aligned = Workspace(workspace).aligned("dst") if workspace is not None else None
    report = run_export_bench(5 if quick else 40, model_dir=model_dir, aligned=aligned, on_line=click.echo)
    for line in format_report(report):
        click.echo(line)
    write_json_atomic(output, report)
    click.echo(f"Results in {output}.")


def _live(output: Path, device: str, minutes: float, model_dir: Path | None) -> None:
    from facelab.bench.live import format_report, run_live_bench
    from facelab.io.files import write_json_atomic

    click.echo(f"Live benchmark on {device}: the demo dst clip looped for {minutes:g} min, then a jitter pass; "
               "other work on this machine slows every number.")
    report = run_live_bench(minutes, model_dir=model_dir, device=device, on_line=click.echo)
    click.echo("")
    for line in format_report(report):
        click.echo(line)
    write_json_atomic(output, report)
    click.echo(f"Results in {output}.")


def _xseg(output: Path, accuracy: bool, minutes: float, quick: bool) -> None:
    from facelab.bench.xseg import JSON_NAME, format_report, run_bench

    with ProgressBar() as bar:
        report = run_bench(output, accuracy=accuracy, minutes=minutes, quick=quick, on_line=click.echo, progress=bar)
    click.echo("")
    for line in format_report(report):
        click.echo(line)
    click.echo(f"Results in {output / JSON_NAME}.")


commands = [bench]
