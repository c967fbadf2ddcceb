"""`facelab xseg`: train the face segmenter on mask-editor polygons (or the generic start), apply it to facesets,
take its masks out again, fetch the labelled faces."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, ask, option_flags, workspace_option, yes_option
from facelab.device import DEVICE_OPTION
from facelab.xseg.options import XSEG_OPTIONS

_faces_dir = click.argument("folder", metavar="[DIR]", required=False, type=click.Path(file_okay=False, path_type=Path))
_side = click.option("--side", type=click.Choice(["src", "dst"]), default="dst", show_default=True,
                     help="Without DIR: the workspace's data_src/aligned or data_dst/aligned.")
_model_dir = click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="Folder of the models [default: WORKSPACE/model]; XSeg lives in its xseg/ folder.")
_device = click.option("--device", default="cpu", show_default=True, help=DEVICE_OPTION.help)


@click.group("xseg")
def xseg() -> None:
    """XSeg face segmenter: masks that follow the face and leave out hair, hands and what covers it."""


@xseg.command("train")
@workspace_option
@_model_dir
@click.option("--faceset", type=click.Choice(["src", "dst", "both"]), default="both", show_default=True,
              help="Which workspace faceset to train on.")
@click.option("--generic/--labelled", "generic", default=None,
              help="Generic start (landmark hulls + synthetic occluders, no labels needed) or only faces with "
                   "mask polygons [default: generic when no face carries polygons].")
@click.option("--iterations", type=click.IntRange(1), default=None,
              help="Stop at this iteration (counting earlier runs).")
@click.option("--minutes", type=click.FloatRange(min=0.01), default=None, help="Stop after this many minutes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of a new model's start.")
@option_flags(XSEG_OPTIONS)
@_device
@yes_option
def train(workspace: Path, model_dir: Path | None, faceset: str, generic: bool | None, iterations: int | None,
          minutes: float | None, seed: int, device: str, yes: bool, **given) -> None:
    """Train (or resume) XSeg on the faces that carry mask polygons → MODEL_DIR/xseg/.

    Saves every --save-minutes and at the end (Ctrl-C saves too); watch it at /training?folder=model/xseg in
    `facelab ui`.
    """
    from facelab.train.checkpoint import ModelFiles
    from facelab.workspace import Workspace
    from facelab.xseg.options import MODEL_NAME
    from facelab.xseg.segmenter import xseg_folder
    from facelab.xseg.trainer import train_xseg

    ws = Workspace(workspace)
    folder = xseg_folder(model_dir or ws.model)
    sides = ["src", "dst"] if faceset == "both" else [faceset]
    faces = [ws.aligned(side) for side in sides if ws.aligned(side).is_dir()] or [ws.aligned(sides[0])]
    new = not ModelFiles(folder, MODEL_NAME).exists()
    values = ask(XSEG_OPTIONS, given, yes) if new else {k: v for k, v in given.items() if v is not None}
    with ProgressBar() as bar:
        result = train_xseg(folder, faces, values, generic=generic, max_iterations=iterations, minutes=minutes,
                            device=device, seed=seed, progress=bar)
    start = "generic start" if result.generic else "labelled faces"
    click.echo(f"XSeg: {result.faces} face(s) ({start}), iterations {result.start_iteration} → {result.iteration} "
               f"in {result.seconds:.0f} s ({result.stopped_by}); saved in {folder}.")


def _faces(folder: Path | None, workspace: Path, side: str) -> Path:
    from facelab.workspace import Workspace

    return folder if folder is not None else Workspace(workspace).aligned(side)  # type: ignore[arg-type]


@xseg.command("apply")
@_faces_dir
@_side
@workspace_option
@_model_dir
@_device
@yes_option
def apply(folder: Path | None, side: str, workspace: Path, model_dir: Path | None, device: str, yes: bool) -> None:
    """Write each face's predicted mask into its own metadata (pixels unchanged); DIR defaults to the
    workspace's data_dst/aligned."""
    from facelab.workspace import Workspace
    from facelab.xseg.apply import apply_folder
    from facelab.xseg.segmenter import Segmenter, xseg_folder

    folder = _faces(folder, workspace, side)
    segmenter = Segmenter.load(xseg_folder(model_dir or Workspace(workspace).model), device)
    with ProgressBar() as bar:
        report = apply_folder(folder, segmenter, progress=bar)
    click.echo(f"Applied XSeg (iteration {segmenter.iteration}) to {report.done} face(s) in {folder}.")
    _skipped(report)


@xseg.command("remove")
@_faces_dir
@_side
@workspace_option
@yes_option
def remove(folder: Path | None, side: str, workspace: Path, yes: bool) -> None:
    """Take the applied XSeg masks out of the faces' metadata (DIR defaults to the workspace's data_dst/aligned)."""
    from facelab.xseg.apply import remove_folder

    folder = _faces(folder, workspace, side)
    with ProgressBar() as bar:
        report = remove_folder(folder, progress=bar)
    click.echo(f"Removed the XSeg mask from {report.done} face(s) in {folder} ({report.kept} had none).")
    _skipped(report)


@xseg.command("fetch")
@_faces_dir
@_side
@workspace_option
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to copy them [default: DIR_xseg beside DIR].")
@yes_option
def fetch(folder: Path | None, side: str, workspace: Path, output: Path | None, yes: bool) -> None:
    """Copy the faces that carry mask polygons to another folder (never overwrites); DIR defaults to the
    workspace's data_dst/aligned."""
    from facelab.xseg.apply import fetch_labelled

    folder = _faces(folder, workspace, side)
    output = output or folder.parent / f"{folder.name}_xseg"
    with ProgressBar() as bar:
        report = fetch_labelled(folder, output, progress=bar)
    click.echo(f"Copied {report.done} labelled face(s) to {output}"
               + (f"; kept {report.kept} already there (nothing is overwritten)." if report.kept else "."))
    _skipped(report)


def _skipped(report) -> None:
    for path, reason in report.skipped:
        click.echo(f"Skipped {path}: {reason}", err=True)


commands = [xseg]
