"""`facelab verify FILE...`: does an image or video carry facelab's synthetic-media label and watermark?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from facelab.cli._common import workspace_option, yes_option


@click.command("verify")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--max-frames", type=click.IntRange(1), default=300, show_default=True,
              help="Video frames to check for the watermark.")
@workspace_option
@yes_option
def verify(files: tuple[Path, ...], max_frames: int, workspace: Path, yes: bool) -> None:
    """Report the metadata label and the invisible watermark facelab puts in what it makes (FILES: images,
    videos or exported .onnx/.dfm models; none: the workspace's result.* videos). It asks nothing; --yes is taken
    for scripts.

    Exits 0 when every file is labelled as synthetic (label or watermark found), 1 otherwise.
    """
    from facelab import provenance
    from facelab.errors import WorkspaceError
    from facelab.workspace import Workspace

    if not files:
        files = tuple(Workspace(workspace).results())
        if not files:
            raise WorkspaceError("no result.* video to verify", path=workspace,
                                 fix="name the files to check, or run `facelab video assemble` first")
    all_found = True
    for path in files:
        result = provenance.verify(path, max_frames=max_frames)
        frames = f", {result.frames_checked} frame(s) checked" if result.frames_checked > 1 else ""
        if result.label is not None:
            label = f"found — \"{result.label.get('label', provenance.LABEL_TEXT)}\""
        else:
            label = "not found"
        mark = "found" if result.has_watermark else "not found"
        click.echo(f"{path}:")
        click.echo(f"  metadata label: {label}")
        if result.frames_checked == 0:
            click.echo("  watermark:      not applicable (a model file, not an image)")
        else:
            click.echo(f"  watermark:      {mark} (score {result.watermark_score:.1f}, threshold "
                       f"{provenance.THRESHOLD:.1f}{frames})")
        click.echo(f"  verdict:        {'SYNTHETIC (made with facelab)' if result.synthetic else 'no facelab label found'}")
        all_found &= result.synthetic
    sys.exit(0 if all_found else 1)


commands = [verify]
