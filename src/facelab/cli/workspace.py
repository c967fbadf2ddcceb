"""`facelab workspace create|clear`."""

from __future__ import annotations

from pathlib import Path

import click

from facelab import workspace as ws_lib
from facelab.cli._common import interactive, workspace_option, yes_option


@click.group("workspace")
def workspace_group() -> None:
    """Create or clear the DeepFaceLab-style workspace layout."""


@workspace_group.command("create")
@workspace_option
def create(workspace: Path) -> None:
    """Create data_src/, data_dst/ (+ aligned, aligned_debug, merged, merged_mask) and model/."""
    ws = ws_lib.create(workspace)
    click.echo(f"Workspace ready at {ws.root}. Put your videos there as data_src.mp4 and data_dst.mp4.")


@workspace_group.command("clear")
@workspace_option
@yes_option
@click.option("--delete-videos", is_flag=True, help="Also delete data_src.* and data_dst.* (kept by default).")
def clear(workspace: Path, yes: bool, delete_videos: bool) -> None:
    """Delete frames, faces, models and results of the workspace (asks first)."""
    ws = ws_lib.Workspace(workspace)
    if not ws.root.is_dir():
        click.echo(f"No workspace at {ws.root}; nothing to clear.")
        return
    what = "everything, the videos too" if delete_videos else "everything except data_src.* and data_dst.*"
    if not yes:
        if not interactive(yes):
            raise click.UsageError("clearing deletes files: pass --yes to confirm when not at a terminal")
        click.confirm(f"Delete {what} in {ws.root}?", default=False, abort=True)
    removed = ws_lib.clear(ws, keep_videos=not delete_videos)
    click.echo(f"Removed {len(removed)} entries from {ws.root}.")


commands = [workspace_group]
