"""`facelab faceset info|recover-names|debug-landmarks|png2jpg|import-dfl`: faceset housekeeping."""

from __future__ import annotations

import json
from pathlib import Path

import click

from facelab.cli._common import (ProgressBar, ask, faces_dir, on_faces_dir, option_flags, side_option,
                                 workspace_option, yes_option)
from facelab.faceset.options import JPEG_QUALITY


@click.group("faceset")
def faceset_group() -> None:
    """Inspect and tidy aligned faces (DIR defaults to the workspace's data_src/aligned).

    None of these asks anything; --yes is taken for scripts that pass it to every command."""


@faceset_group.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@side_option()
@workspace_option
@yes_option
def info(file: Path, side: str, workspace: Path, yes: bool) -> None:
    """Print the metadata stored inside a face FILE (.jpg/.png) as JSON. A bare file name that is not in the
    current folder is looked up in the workspace's data_SIDE/aligned."""
    from facelab.io.faceimage import read_meta
    from facelab.names import is_plain_name

    if not file.exists() and is_plain_name(str(file)):
        file = faces_dir(None, workspace, side) / file
    click.echo(json.dumps(read_meta(file).to_json(), indent=2))


@faceset_group.command("recover-names")
@on_faces_dir()
def recover_names(folder: Path | None, side: str, workspace: Path, yes: bool) -> None:
    """Rename faces back to their original <frame>_<n> names (from their metadata)."""
    from facelab.faceset.tools import recover_names as run

    folder = faces_dir(folder, workspace, side)
    with ProgressBar() as bar:
        changed = run(folder, progress=bar)
    click.echo(f"Renamed {changed} faces in {folder} to their original names.")


@faceset_group.command("debug-landmarks")
@on_faces_dir()
@click.option("--remove", is_flag=True, help="Remove the *_debug.jpg pictures written earlier.")
def debug_landmarks(folder: Path | None, side: str, workspace: Path, yes: bool, remove: bool) -> None:
    """Write <name>_debug.jpg beside each face with its landmarks drawn (to spot bad alignments)."""
    from facelab.faceset import tools

    folder = faces_dir(folder, workspace, side)
    if remove:
        click.echo(f"Removed {len(tools.remove_debug(folder))} debug pictures from {folder}.")
        return
    with ProgressBar() as bar:
        written = tools.debug_landmarks(folder, progress=bar)
    click.echo(f"Wrote {len(written)} debug pictures in {folder}; `--remove` takes them away.")


@faceset_group.command("png2jpg")
@on_faces_dir()
@option_flags([JPEG_QUALITY])
def png2jpg(folder: Path | None, side: str, workspace: Path, yes: bool, **given) -> None:
    """Convert PNG faces to JPG, keeping their metadata; the PNGs move to DIR_trash."""
    from facelab.faceset.rename import trash_dir
    from facelab.faceset.tools import png_to_jpg

    folder = faces_dir(folder, workspace, side)
    values = ask([JPEG_QUALITY], given, yes)
    with ProgressBar() as bar:
        written = png_to_jpg(folder, quality=values["quality"], progress=bar)
    click.echo(f"Converted {len(written)} faces; the PNGs are in {trash_dir(folder)}.")


@faceset_group.command("import-dfl")
@on_faces_dir()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write facelab copies here instead of adding facelab metadata to the files in place.")
def import_dfl(folder: Path | None, side: str, workspace: Path, yes: bool, output: Path | None) -> None:
    """Make DeepFaceLab aligned faces (.jpg) usable by facelab. Their pickled metadata is read with a
    restricted unpickler that runs no code; a file that tries to is refused."""
    from facelab.faceset.dfl import import_dfl as run

    folder = faces_dir(folder, workspace, side)
    with ProgressBar() as bar:
        written = run(folder, output, progress=bar)
    click.echo(f"Imported {len(written)} DeepFaceLab faces into {output or folder}.")


commands = [faceset_group]
