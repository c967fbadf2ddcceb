"""`facelab live`: swap the face of a video file or a camera as a live stream → a labelled video, or stats only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from facelab.cli._common import trained_model_flags, FiniteFloatRange, ask, option_flags, workspace_option, yes_option
from facelab.device import DEVICE_OPTION, resolve_devices
from facelab.errors import OptionError
from facelab.live.options import LIVE_OPTIONS, session_args
from facelab.merge.options import MERGE_OPTIONS, SETTINGS_FILE, load_settings_file, options_with_defaults

STATS_EVERY = 10.0  # seconds between status lines when the output is not a terminal


@click.command("live")
@workspace_option
@trained_model_flags
@click.option("--model-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An exported model (.onnx or .dfm, from `facelab export` or DeepFaceLab) run in ONNX Runtime, "
                   "instead of the model folder.")
@click.option("--input", "-i", "source", default=None,
              help="A video file, or a camera as /dev/videoN [default: the workspace's data_dst video].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the swapped stream to this .mp4 or .avi (labelled as synthetic) [default: none, stats "
                   "only].")
@click.option("--device", default=None, help=DEVICE_OPTION.help + " [default: auto]")
@click.option("--seconds", type=FiniteFloatRange(0.1, 7 * 24 * 3600), default=None,
              help="Stop after this many seconds [default: at the end of the file; a camera: at Ctrl-C].")
@option_flags(LIVE_OPTIONS)
@option_flags(MERGE_OPTIONS)
@yes_option
def live(workspace: Path, model_dir: Path | None, model_name: str | None, model_file: Path | None,
         source: str | None, output: Path | None, device: str | None, seconds: float | None, yes: bool,
         **given) -> None:
    """Swap the face in a video file or a camera stream as it plays, and show frames/s and latency.

    Faces are detected every few frames and tracked in between, their landmarks steadied over time, then
    swapped and blended with the merge options (as `facelab merge`; MODEL_DIR/merge_settings.json is read when
    there). Frames the swap cannot keep up with are dropped and counted, never queued up. Every swapped face
    carries the invisible watermark and the output video is labelled as synthetic. Ctrl-C stops and keeps
    what was recorded.
    """
    from facelab.live.session import LiveSwap, load_live_swapper
    from facelab.live.sources import VideoSink, open_source
    from facelab.live.stream import run_stream
    from facelab.workspace import Workspace
    from facelab.xseg.segmenter import load_for_masks

    ws = Workspace(workspace)
    model_dir = model_dir or ws.model
    source = source or str(ws.video("dst"))
    if output is not None and Path(source).exists() and output.resolve() == Path(source).resolve():
        raise OptionError("the output would overwrite the input", path=output, fix="give another --output file")
    saved, _ = load_settings_file(model_dir / SETTINGS_FILE) if model_file is None else ({}, ())
    if saved:
        click.echo(f"Using saved merge settings from {model_dir / SETTINGS_FILE} (per-frame ranges do not apply "
                   "live).")
    merge_values = ask(options_with_defaults(saved), {k: given[k] for k in (o.name for o in MERGE_OPTIONS)}, yes)
    live_values = ask(LIVE_OPTIONS, {k: given[k] for k in (o.name for o in LIVE_OPTIONS)}, True)
    stream = open_source(source)
    sink = VideoSink(output, stream.fps) if output is not None else None  # a bad suffix fails before the model loads
    device = device or DEVICE_OPTION.default
    swapper = load_live_swapper(model_file or model_dir, model_name, device)
    click.echo(f"Model {swapper.name} ({swapper.face_type}, {swapper.resolution} px) on "
               f"{getattr(swapper, 'device', device)}; input {stream.name} at {float(stream.fps):.2f} fps"
               + (f", {stream.count} frames" if stream.count else "") + ".")
    # The detector runs where the model does (an ONNX Runtime model says no torch device: the one asked for).
    detector_device = str(getattr(swapper, "device", None) or resolve_devices(device)[0])
    segmenter = load_for_masks(model_dir, [merge_values["mask"]], detector_device)
    session = LiveSwap(swapper, merge_values, device=detector_device, segmenter=segmenter,
                       **session_args(live_values))
    if sink is not None:
        sink.details["model"] = swapper.name
    session.warm_up()  # the first calls build kernels and thread pools: not the stream's latency
    report = run_stream(session, stream, sink, realtime=live_values["realtime"], queue_size=live_values["queue"],
                        max_seconds=seconds, on_stats=_stats_printer())
    if sys.stdout.isatty():
        click.echo("")
    click.echo(f"Swapped {report.frames_out} of {report.frames_in} frame(s) ({report.dropped} dropped) with "
               f"{report.faces} face(s) in {report.seconds:.1f} s: {report.fps:.1f} frames/s, latency median "
               f"{report.latency(50):.0f} ms, p95 {report.latency(95):.0f} ms.")
    click.echo("Median ms per frame: " + ", ".join(f"{stage} {report.stage_median(stage):.1f}"
                                                   for stage in ("detect", "align", "swap", "blend")) + ".")
    if sink is not None:
        click.echo(f"Wrote {sink.frames} frame(s) → {output} (labelled as synthetic)." if sink.frames
                   else "No frame was swapped: nothing written.")


def _stats_printer() -> Callable:
    """An ``on_stats`` listener: one status line a second rewritten in place at a terminal, else a line every
    ten seconds (a log stays short)."""
    last = [-STATS_EVERY]

    def show(report) -> None:
        line = (f"{report.frames_out} frames out, {report.dropped} dropped, {report.fps:.1f} frames/s, latency "
                f"{report.latency(50):.0f} ms (p95 {report.latency(95):.0f})")
        if sys.stdout.isatty():
            click.echo(f"\r{line}   ", nl=False)
        elif report.seconds - last[0] >= STATS_EVERY:
            click.echo(line)
            last[0] = report.seconds

    return show


commands = [live]
