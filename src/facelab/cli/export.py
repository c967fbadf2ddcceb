"""`facelab export`: a trained model as one ONNX graph (DeepFaceLive's .dfm or a plain .onnx), labelled synthetic."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import trained_model_flags, ask, interactive, option_flags, workspace_option, yes_option
from facelab.export.options import EXPORT_OPTIONS


@click.command("export")
@workspace_option
@trained_model_flags
@option_flags(EXPORT_OPTIONS)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write [default: MODEL_DIR/NAME.dfm or .onnx].")
@click.option("--check", is_flag=True, help="Run the exported file in ONNX Runtime on real aligned faces (the "
              "workspace's dst faces, else the packaged demo photos) and compare with the PyTorch model; fail "
              "above 2e-3 (then no file is written).")
@yes_option
def export(workspace: Path, model_dir: Path | None, model_name: str | None, output: Path | None, check: bool,
           yes: bool, **given) -> None:
    """Export the trained model as one ONNX graph: aligned dst faces in, the swapped face and its masks out.

    `--format dfm` is DeepFaceLive's model file (input in_face, optional morph_value for LIAE models, outputs
    the dst mask, the celeb face and its mask); `--format onnx` the same graph with facelab's tensor names. Both
    run in `facelab live --model-file`. The file carries the synthetic-media label and the model's face type,
    resolution, name and iteration in its metadata (`facelab verify FILE` reads them). An existing file is
    replaced only when confirmed (or with --yes).
    """
    from facelab.export.check import TOLERANCE
    from facelab.export.exporter import export_model, export_path
    from facelab.workspace import Workspace

    ws = Workspace(workspace)
    model_dir = model_dir or ws.model
    values = ask(EXPORT_OPTIONS, given, yes)
    path = export_path(model_dir, model_name, values["format"], output)
    overwrite = yes
    if path.exists() and interactive(yes):
        click.confirm(f"{path} already exists. Replace it?", default=False, abort=True)
        overwrite = True
    result = export_model(model_dir, model_name, values["format"], path, opset=values["opset"], overwrite=overwrite,
                          check=check, check_aligned=ws.aligned("dst"))
    info = result.info
    morph = ", morph_value input" if info.morph else ""
    click.echo(f"Exported {info.model} ({info.face_type}, {info.resolution} px, iteration {info.iteration}{morph}) "
               f"→ {result.path} ({result.size / 2 ** 20:.1f} MiB, {info.format}, opset {values['opset']}).")
    if result.check is not None:
        diffs = ", ".join(f"{name} {value:.2e}" for name, value in result.check.differences.items())
        click.echo(f"Check: ONNX Runtime vs PyTorch on {result.check.source}: max abs difference "
                   f"{result.check.max_abs:.2e} ({diffs}) — within {TOLERANCE:g}.")


commands = [export]
