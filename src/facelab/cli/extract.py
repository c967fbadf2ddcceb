"""`facelab extract src|dst`: find, align and save every face of the workspace's frames or video."""

from __future__ import annotations

import time
from pathlib import Path

import click

from facelab.cli._common import ProgressBar, ask, option_flags, workspace_option, yes_option
from facelab.extract.options import EXTRACT_OPTIONS

# The debug images' default depends on the side, which the generated "(default none)" would not say.
WORDING = {"debug": "Write aligned_debug images? (default: yes for dst, no for src; y/n, ?:help): "}


@click.command("extract")
@click.argument("side", type=click.Choice(["src", "dst"]))
@workspace_option
@yes_option
@option_flags(EXTRACT_OPTIONS)
@click.option("--from-video", is_flag=True,
              help="Decode data_SIDE.* directly (streaming) even when frame images exist. "
                   "Used automatically when data_SIDE/ has no frames.")
@click.option("--rectangles", type=click.Path(dir_okay=False, path_type=Path),
              help='For --detector manual: JSON {"00001.png": [[x0, y0, x1, y1], ...], ...} in frame pixels.')
@click.option("--revisit", is_flag=True,
              help="Only the frames where no face was found or whose aligned_debug image you deleted; "
                   "their old faces move to aligned_trash/ first (the seed's MANUAL FIX pass).")
def extract(side: str, workspace: Path, yes: bool, from_video: bool, rectangles: Path | None, revisit: bool,
            **given) -> None:
    """Detect faces, place 68 landmarks, align and save them to data_SIDE/aligned/ with their metadata."""
    from facelab.device import resolve_devices
    from facelab.errors import OptionError
    from facelab.extract import runner
    from facelab.extract.detectors.manual import load_rectangles
    from facelab.io.frames import list_images
    from facelab.workspace import Workspace

    ws = Workspace(workspace)
    values = ask(EXTRACT_OPTIONS, given, yes, WORDING)
    if values["detector"] == "manual":
        if rectangles is None:
            raise OptionError("--detector manual needs --rectangles FILE",
                              fix='write {"00001.png": [[x0, y0, x1, y1]]} for the frames to fix')
        values["rectangles"] = load_rectangles(rectangles)
    aligned = ws.aligned(side)
    debug_home = ws.aligned_debug if side == "dst" else ws.frames("src") / "aligned_debug"
    debug_dir = debug_home if (side == "dst" if values["debug"] is None else values["debug"]) else None
    # Check the source and the device before anything moves: a failed start leaves the faceset untouched.
    video = ws.video(side) if from_video or not list_images(ws.frames(side)) else None
    resolve_devices(values["device"])
    only = None
    if revisit:
        only = runner.frames_to_revisit(aligned, debug_home)
        if values["detector"] == "manual":
            only = sorted(set(only) | set(values["rectangles"]))
        if not only:
            click.echo("Nothing to revisit: every frame has a face and every debug image is still there.")
            return
        moved = runner.move_faces_of(aligned, _trash(ws.frames(side)), only)
        click.echo(f"Revisiting {len(only)} frames ({moved} old faces moved to aligned_trash/).")
    else:
        trash = _trash(ws.frames(side))
        moved = runner.move_faces_of(aligned, trash)
        if moved:
            click.echo(f"Moved {moved} faces of an earlier run to {trash}.")
    with ProgressBar() as bar:
        if video is not None:
            report = runner.extract_video(video, aligned, only=only, debug_dir=debug_dir, progress=bar, **values)
        else:
            report = runner.extract_folder(ws.frames(side), aligned, only=only, debug_dir=debug_dir, progress=bar,
                                           **values)
    fps = report.frames / report.seconds if report.seconds else 0.0
    click.echo(f"{report.frames} frames, {report.faces} faces → {aligned} ({fps:.1f} frames/s).")
    if report.no_face:
        click.echo(f"No face in {len(report.no_face)} frames (listed in {aligned / runner.LOG_NAME}); "
                   f"fix them with `facelab extract {side} --revisit --detector manual --rectangles FILE`.")
    if report.unreadable:
        click.echo(f"Skipped {len(report.unreadable)} unreadable frames: {', '.join(sorted(report.unreadable)[:5])}"
                   + (" ..." if len(report.unreadable) > 5 else ""))


def _trash(side_dir: Path) -> Path:
    return side_dir / "aligned_trash" / time.strftime("extract-%Y%m%d-%H%M%S")


commands = [extract]
