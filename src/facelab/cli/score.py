"""`facelab score [WORKSPACE]`: how good is the merge? Identity, pose, expression, flicker, reconstruction."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, ask, option_flags, workspace_option, workspace_or, yes_option
from facelab.device import DEVICE_OPTION
from facelab.score.options import SCORE_OPTIONS

_FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("score")
@click.argument("root", metavar="[WORKSPACE]", required=False, type=click.Path(file_okay=False, path_type=Path))
# The positional WORKSPACE is the older spelling, kept so scripts that use it still work.
@workspace_option
@option_flags(SCORE_OPTIONS)
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Trained model for the reconstruction SSIM [default: WORKSPACE/model].")
@click.option("--model", "model_name", default=None, help="Model name when the folder holds several.")
@click.option("--holdout-src", type=_FOLDER, default=None,
              help="Aligned src faces kept out of training, for a held-out SSIM [default: the src faceset, "
              "which only measures training progress].")
@click.option("--holdout-dst", type=_FOLDER, default=None, help="The same for dst.")
@click.option("--device", default=None, help=DEVICE_OPTION.help + " [default: auto]")
@yes_option
def score(root: Path | None, workspace: Path, model_dir: Path | None, model_name: str | None,
          holdout_src: Path | None, holdout_dst: Path | None, device: str | None, yes: bool, **given) -> None:
    """Score the merged frames in data_dst/merged against the dst video and the src faceset.

    Per frame: identity (dlib face-descriptor distance to the src and to the dst person), pose error (degrees),
    expression error (68-landmark distance in eye distances) and flicker (face change the dst lacks); with a
    trained model also the reconstruction SSIM. Writes WORKSPACE/score.json and WORKSPACE/score.html (plots and
    the worst frames) and prints the summary.
    """
    from facelab.score.report import summary_lines
    from facelab.score.runner import score_workspace

    values = ask(SCORE_OPTIONS, given, yes)
    with ProgressBar() as bar:
        result = score_workspace(workspace_or(root, workspace), model_dir=model_dir, model_name=model_name,
                                 holdout_src=holdout_src, holdout_dst=holdout_dst,
                                 device=device or DEVICE_OPTION.default, progress=bar, **values)
    for line in summary_lines(result.summary):
        click.echo(line)
    click.echo(f"Per-frame numbers in {result.json_path}; report with plots in {result.report_path}.")


commands = [score]
