"""`facelab bench extract|train|merge|all`: speed at fixed standard settings, printed as a table + bench.json;
`facelab bench quality`: the swap's quality on held-out faces after a fixed training budget, per configuration."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, yes_option


@click.command("bench")
@click.argument("which", type=click.Choice(["extract", "train", "merge", "all", "quality"]), default="all",
                required=False)
@click.option("--device", default=None,
              help="auto = the CPU, and the GPU with most free memory when there is one; or cpu, cuda, cuda:N, all. "
                   "[default: auto; cpu for quality]")
@click.option("--quick", is_flag=True, help="A few iterations only: a smoke run, not numbers to compare.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Speed: the JSON file [default: bench.json]. Quality: the folder for quality.json, quality.png, "
                   "swaps.png and the cached facesets [default: bench_quality].")
@click.option("--minutes", type=click.FloatRange(0.01, 24 * 60), default=10.0, show_default=True,
              help="Quality: training budget per configuration (CPU minutes ÷ torch threads on the CPU).")
@click.option("--configs", default=None, help="Quality: comma-separated configurations [default: all of them].")
@click.option("--checkpoints", type=click.IntRange(1, 20), default=4, show_default=True,
              help="Quality: times each configuration is scored during its budget (for the curves; the last is "
                   "the end).")
@click.option("--frames", type=click.IntRange(10), default=None,
              help="Quality: use only the first frames of each demo video (a smoke run) [default: all].")
@yes_option
def bench(which: str, device: str | None, quick: bool, output: Path | None, minutes: float, configs: str | None,
          checkpoints: int, frames: int | None, yes: bool) -> None:
    """Measure extract, train and merge speed at fixed settings on the real demo media, or (`quality`) how good
    the swap is after the same training budget.

    The settings are fixed, so numbers compare across machines and versions (no prompts). Per row: frames/s or
    samples/s, median ms per iteration with its interquartile range, peak memory (process RSS on the CPU,
    torch-allocated on a GPU) and, for training, the FLOP/s achieved against the device's matmul peak measured
    in the same run. Training: SAE df 64 px (ae 128, e_ch 32, d_ch 32, learned mask, batch 8) and SAE liae
    128 px (ae 256, e_ch 64, d_ch 64, batch 4), each in float32 and in the faster precision the device has (bf16
    on CPUs with AVX-512-BF16 or AMX), beside DeepFaceLab 2 SAEHD's ms/iteration at the same widths and with the
    five ops that take the most time. On a CPU these are seconds to minutes per step, so the full run takes long
    there; --quick is a smoke run.

    `quality` trains every configuration from scratch (same seed, same budget) on the demo facesets without
    their last 20 % of frames, and scores those held-out faces: src->src SSIM and PSNR in the mask, the swap's
    identity (dlib distance to src and to dst), sharpness against real src faces, expression (landmark error
    against dst), iterations and ms/iteration. A configuration whose model is not in this facelab is skipped.
    """
    if which == "quality":
        _quality(output or Path("bench_quality"), device or "cpu", minutes, configs, checkpoints, frames)
        return
    from facelab.bench.runner import bench_devices, format_table, run_benchmarks, save

    devices = bench_devices(device or "auto")
    output = output or Path("bench.json")
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


commands = [bench]
