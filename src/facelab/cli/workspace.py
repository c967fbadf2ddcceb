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
@yes_option
def create(workspace: Path, yes: bool) -> None:
    """Create data_src/, data_dst/ (+ aligned, aligned_debug, merged, merged_mask) and model/."""
    ws = ws_lib.create(workspace)
    click.echo(f"Workspace ready at {ws.root}. Put your videos there as data_src.mp4 and data_dst.mp4.")


@workspace_group.command("clear")
@workspace_option
@yes_option
@click.option("--delete-videos", is_flag=True,
              help="Also move data_src.* and data_dst.* to the trash (kept by default).")
@click.option("--is-workspace", is_flag=True,
              help="The folder is a workspace even though it has no data_src/ and data_dst/: clear facelab's "
                   "files in it anyway (other files always stay).")
def clear(workspace: Path, yes: bool, delete_videos: bool, is_workspace: bool) -> None:
    """Move the frames, faces, models and results facelab made to WORKSPACE/.facelab-trash/ (asks first).

    Your own files in the workspace stay where they are; a missing workspace is created.
    """
    ws = ws_lib.Workspace(workspace)
    if not ws.root.exists():
        ws_lib.create(ws.root)
        click.echo(f"No workspace at {ws.root}: created an empty one.")
        return
    entries = ws_lib.clearable(ws, videos=delete_videos, without_layout=is_workspace)
    if entries and not yes:
        if not interactive(yes):
            raise click.UsageError("clearing moves files to the trash: pass --yes to confirm when not at a terminal")
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries)
        click.confirm(f"Move {names} to {ws.trash}?", default=False, abort=True)
    moved = ws_lib.clear(ws, videos=delete_videos, without_layout=is_workspace)
    if not moved:
        click.echo(f"Nothing to clear in {ws.root}; the workspace folders are there.")
        return
    click.echo(f"Moved {len(moved)} entries to {moved[0].parent} (delete that folder to free the space); "
               f"the empty workspace folders are back.")


commands = [workspace_group]
