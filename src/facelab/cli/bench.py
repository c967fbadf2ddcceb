"""`facelab bench extract|train|merge|all`: speed at fixed standard settings, printed as a table + bench.json."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar


@click.command("bench")
@click.argument("which", type=click.Choice(["extract", "train", "merge", "all"]), default="all", required=False)
@click.option("--device", default="auto", show_default=True,
              help="auto = the CPU, and the GPU with most free memory when there is one; or cpu, cuda, cuda:N, all.")
@click.option("--quick", is_flag=True, help="A few iterations only: a smoke run, not numbers to compare.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench.json"),
              show_default=True, help="Where to write the results as JSON.")
def bench(which: str, device: str, quick: bool, output: Path) -> None:
    """Measure extract, train and merge speed at fixed settings on the real demo media.

    The settings are fixed, so numbers compare across machines and versions (no prompts). Per row: frames/s or
    samples/s, median ms per iteration with its interquartile range, peak memory (process RSS on the CPU,
    torch-allocated on a GPU) and, for training, the FLOP/s achieved against the device's matmul peak measured
    in the same run. Training: SAE df 64 px (ae 128, e_ch 32, d_ch 32, learned mask, batch 8) and SAE liae
    128 px (ae 256, e_ch 64, d_ch 64, batch 4). On a CPU these are seconds to minutes per step, so the full run
    takes long there; --quick is a smoke run.
    """
    from facelab.bench.runner import bench_devices, format_table, run_benchmarks, save

    devices = bench_devices(device)
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


commands = [bench]
