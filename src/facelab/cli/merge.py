"""`facelab merge`: put the trained model's face into every dst frame → data_dst/merged (+ merged_mask)."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, ask, option_flags, trained_model_flags, workspace_option, yes_option
from facelab.device import DEVICE_OPTION
from facelab.merge.options import MERGE_OPTIONS, SETTINGS_FILE, load_settings_file, options_with_defaults, resolve


@click.command("merge")
@workspace_option
@trained_model_flags
@click.option("--device", default=None, help=DEVICE_OPTION.help + " [default: auto]")
@option_flags(MERGE_OPTIONS)
@click.option("--overwrite", is_flag=True, help="Merge again frames that already have a merged file.")
@click.option("--debug", "debug_view", is_flag=True, help="Write a debug panel per frame (dst face, prediction, "
              "masks, result) to data_dst/merged_debug and print per-frame details.")
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="Blending threads [default: CPU cores].")
@yes_option
def merge(workspace: Path, model_dir: Path | None, model_name: str | None, device: str | None, overwrite: bool,
          debug_view: bool, threads: int | None, yes: bool, **given) -> None:
    """Merge the predicted faces into data_dst/ frames → data_dst/merged/ and data_dst/merged_mask/.

    Frames without a face are passed through unchanged. Reads MODEL_DIR/merge_settings.json when present
    (global and per-frame-range settings from the merge tuner). Every merged frame is labelled as synthetic
    (PNG metadata + invisible watermark).
    """
    from facelab.merge.runner import MergePaths, merge_folder
    from facelab.train.swap import Swapper
    from facelab.workspace import Workspace
    from facelab.xseg.segmenter import load_for_masks

    ws = Workspace(workspace)
    model_dir = model_dir or ws.model
    settings_path = model_dir / SETTINGS_FILE
    saved, _ = load_settings_file(settings_path)
    if saved:
        click.echo(f"Using saved merge settings from {settings_path}.")
    values = ask(options_with_defaults(saved), given, yes)
    device = device or DEVICE_OPTION.default
    swapper = Swapper.load(model_dir, model_name, device=device)
    click.echo(f"Model {swapper.name} ({swapper.face_type}, {swapper.resolution} px, iteration {swapper.iteration}) "
               f"on {swapper.device}.")
    settings = resolve(values, settings_path)
    segmenter = load_for_masks(model_dir, [settings.base["mask"]] + [r.options.get("mask") for r in settings.ranges],
                               device)
    if segmenter is not None:
        click.echo(f"XSeg segmenter (iteration {segmenter.iteration}) for the seg-* masks.")
    paths = MergePaths(ws.frames("dst"), ws.aligned("dst"), ws.merged, ws.merged_mask,
                       ws.frames("dst") / "merged_debug" if debug_view else None)

    def show(frame) -> None:
        if debug_view:
            click.echo(f"{frame.name}: {frame.faces} face(s), {frame.seconds * 1000:.0f} ms")
            for line in frame.info:
                click.echo(f"  {line}")

    with ProgressBar(disable=True if debug_view else None) as bar:
        report = merge_folder(paths, swapper, settings, overwrite=overwrite, threads=threads, on_frame=show,
                              progress=bar, segmenter=segmenter)
    click.echo(f"Merged {report.merged} frame(s) with {report.faces} face(s) in {report.seconds:.1f} s "
               f"→ {ws.merged} (masks in {ws.merged_mask}).")
    if report.kept:
        click.echo(f"Kept {report.kept} frame(s) merged before (use --overwrite to redo them).")
    if report.without_face:
        click.echo(f"{report.without_face} frame(s) had no face and were passed through unchanged.")
    for path, reason in report.skipped_faces:
        click.echo(f"Skipped dst face {path}: {reason}", err=True)
    if paths.debug is not None:
        click.echo(f"Debug panels in {paths.debug}.")


commands = [merge]
