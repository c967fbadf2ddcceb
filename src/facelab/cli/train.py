"""`facelab train`: train (or resume) a face-swap model on the workspace's src and dst facesets."""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from facelab.cli._common import ProgressBar, ask, interactive, option_flags, workspace_option, yes_option
from facelab.device import DEVICE_OPTION
from facelab.options import Option
from facelab.train.options import COMMON_OPTIONS, resume_options, with_defaults
from facelab.workspace import Workspace

DEFAULT_MODEL = "SAE"
MODEL_NAMES = ("H64", "H128", "DF", "LIAEF128", "SAE")
OVERRIDE_SECONDS = 2.0


class _TrainCommand(click.Command):
    """Adds one flag per model option on first use: those live beside torch, which `facelab --help` never loads."""

    _model_params_added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._model_params_added:
            self._model_params_added = True
            self.params.extend(_model_option_params())
        return super().get_params(ctx)


def _model_option_params() -> list[click.Option]:
    """One flag per model option name across all models (parsed later by the chosen model's own Option)."""
    from facelab.train.models import MODELS
    from facelab.train.trainer import option_specs

    seen: dict[str, tuple[Option, list[str]]] = {}
    common = {o.name for o in COMMON_OPTIONS} | {"pretrain_faceset"}  # those have static flags
    for name in MODELS.names():
        for opt in option_specs(name):
            if opt.name not in common:
                seen.setdefault(opt.name, (opt, []))[1].append(name)
    params = []
    for opt, models in seen.values():
        where = f"{', '.join(models)} option{', fixed once the model exists' if opt.fixed else ''}"
        rng = opt.describe_range()
        help_text = f"{opt.help} [{where}; default {opt.default}{'; ' + rng if rng else ''}]"
        if opt.kind is bool:
            params.append(click.Option([f"{opt.flag}/--no-{opt.flag[2:]}", opt.name], default=None, help=help_text))
        else:
            params.append(click.Option([opt.flag, opt.name], default=None, type=str, help=help_text))
    return params


@click.command("train", cls=_TrainCommand)
@workspace_option
@click.option("--model", "model_name", type=click.Choice(MODEL_NAMES), default=None,
              help=f"Model architecture (asked at a terminal; default {DEFAULT_MODEL}, or the model already in --model-dir).")
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the model is saved [default: WORKSPACE/model].")
@click.option("--src-aligned", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The src faceset [default: WORKSPACE/data_src/aligned].")
@click.option("--dst-aligned", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The dst faces [default: WORKSPACE/data_dst/aligned].")
@click.option("--pretrain-faceset", default=None,
              help="Pretrain: both sides learn this faceset of many people; the iteration count restarts after "
                   "(SAE keeps it as an option: pass '' to end pretraining).")
@click.option("--device", default=DEVICE_OPTION.default, show_default=True, help=DEVICE_OPTION.help)
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Stop after this many iterations.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many minutes.")
@click.option("--ui", "with_ui", is_flag=True,
              help="Also serve the browser UI (live preview, loss graph, save/stop buttons) while training; "
                   "prints its URL with an access token.")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=7777, show_default=True,
              help="Port of --ui on 127.0.0.1 (the next free one when busy; 0: any free port).")
@option_flags(COMMON_OPTIONS)
@yes_option
def train(workspace: Path, model_name: str | None, model_dir: Path | None, src_aligned: Path | None,
          dst_aligned: Path | None, pretrain_faceset: str | None, device: str, iterations: int | None,
          minutes: float | None, with_ui: bool, ui_port: int, yes: bool, **given: Any) -> None:
    """Train a model; Enter (at a terminal) or Ctrl-C saves and stops. Run again to resume.

    On a new model every option is asked (or taken from flags / defaults with --yes) and saved with it.
    On a saved model, press Enter within 2 seconds to change the options that may change; architecture
    options stay fixed. Several GPUs: `torchrun --nproc-per-node N $(which facelab) train --yes ...` (one process per GPU, DDP).
    """
    from facelab.train import checkpoint
    from facelab.train.trainer import option_specs, train_model

    ws = Workspace(workspace)
    model_dir = model_dir or ws.model
    model_name = _choose_model(model_name, model_dir, yes, checkpoint.find_models(model_dir))
    specs = option_specs(model_name)
    if any(o.name == "pretrain_faceset" for o in specs):
        given["pretrain_faceset"], pretrain_faceset = pretrain_faceset, None
    foreign = [k for k, v in given.items() if v is not None and k not in {o.name for o in specs}]
    if foreign:
        raise click.UsageError(f"--{foreign[0].replace('_', '-')} is not an option of model {model_name}")
    files = checkpoint.ModelFiles(model_dir, model_name)
    if files.exists():
        options = resume_options(specs, checkpoint.load_options(files), given)
        if interactive(yes) and _enter_within(OVERRIDE_SECONDS):
            changeable = [o for o in with_defaults(specs, options) if not o.fixed]
            options.update(ask(changeable, {}, yes=False))
        click.echo(f"Resuming {model_name} in {model_dir}.")
    else:
        if interactive(yes):
            click.echo(f"New {model_name} model in {model_dir}: choose its options (Enter takes the default).")
        options = ask(specs, given, yes)
    if device.strip().lower() == "all" and "WORLD_SIZE" not in os.environ:
        gpus = _gpu_count()
        if gpus > 1:
            _relaunch_on_gpus(gpus, specs, options)
            return
    ui = _start_ui(ws, model_dir, ui_port) if with_ui and os.environ.get("RANK", "0") == "0" else None
    if sys.stdin.isatty():
        _drop_typeahead()
        click.echo("Training: press Enter to save and stop (Ctrl-C works too).")
    try:
        with ProgressBar() as bar, _ConsoleLine() as line:
            result = train_model(model_dir, src_aligned or ws.aligned("src"), dst_aligned or ws.aligned("dst"),
                                 model_name, options, max_iterations=iterations,
                                 max_seconds=minutes * 60 if minutes else None, device=device, progress=bar,
                                 pretrain_faceset=Path(pretrain_faceset) if pretrain_faceset else None,
                                 on_iteration=line, should_stop=_enter_pressed if sys.stdin.isatty() else None)
    finally:
        if ui is not None:
            ui.stop()
    if os.environ.get("RANK", "0") != "0":  # under torchrun only the first process reports
        return
    losses = "" if math.isnan(result.loss_src) else f"src loss {result.loss_src:.4f}, dst loss {result.loss_dst:.4f}; "
    click.echo(f"Saved {model_name} at iteration {result.iteration} in {model_dir} ({losses}stopped: {result.stopped_by}).")


def _start_ui(ws: Workspace, model_dir: Path, port: int):
    """The UI server in a background thread (Ctrl-C stays with training); prints the training page's URL."""
    from facelab.web.server import start

    page = "training"
    try:
        folder = Path(model_dir).resolve().relative_to(ws.root.resolve()).as_posix()
    except ValueError:
        folder = None
        click.echo(f"Warning: {model_dir} is outside the workspace {ws.root}: the UI shows only models inside it.",
                   err=True)
    if folder and folder != "model":
        page += f"?folder={urllib.parse.quote(folder)}"
    return start(ws.root, "127.0.0.1", port, background=True, announce=lambda url: click.echo(
        f"Training page (open it in a browser; over SSH forward the port first):\n    "
        f"{url.replace('/?token=', '/' + page + ('&' if '?' in page else '?') + 'token=')}"))


def _drop_typeahead() -> None:
    """Forget Enter presses typed before training started (they would stop it at once)."""
    try:
        import termios

        termios.tcflush(sys.stdin, termios.TCIFLUSH)
    except (ImportError, OSError):
        pass


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _relaunch_on_gpus(gpus: int, specs, options: dict[str, Any]) -> None:
    """Run this same command under torchrun, one DDP process per GPU, with the options settled here."""
    flags = []
    for o in specs:
        value = options[o.name]
        if o.kind is bool:
            flags.append(o.flag if value else f"--no-{o.flag[2:]}")
        elif value is not None:
            flags += [o.flag, str(value)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
           sys.argv[0], *sys.argv[1:], "--yes", *flags]
    click.echo(f"Training on {gpus} GPUs (torch DDP).")
    code = subprocess.call(cmd)
    if code:
        raise click.ClickException(f"the GPU processes stopped with exit code {code}")


def _choose_model(name: str | None, model_dir: Path, yes: bool, existing: list[str]) -> str:
    if name:
        return name
    default = existing[0] if len(existing) == 1 else DEFAULT_MODEL
    if not interactive(yes):
        return default
    if existing:
        click.echo(f"Models in {model_dir}: {', '.join(existing)}")
    return click.prompt("Model", type=click.Choice(MODEL_NAMES), default=default)


def _enter_within(seconds: float) -> bool:
    click.echo(f"Press Enter in {seconds:g} seconds to override model settings.")
    return _enter_pressed(seconds)


def _enter_pressed(timeout: float = 0.0) -> bool:
    """Whether a line arrived on stdin within ``timeout`` seconds (consumed when it did)."""
    try:
        ready, _, _ = select.select([sys.stdin], [], [], timeout)
    except (OSError, ValueError):  # no select on this stdin (e.g. Windows consoles)
        return False
    if ready:
        sys.stdin.readline()
    return bool(ready)


class _ConsoleLine:
    """The seed's line: ``[time][#iteration][ms][src loss][dst loss]``, rewritten in place at a terminal,
    once every 10 s otherwise; saves and roll-backs get their own line."""

    def __init__(self):
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0
        self.dirty = False

    def __call__(self, report) -> None:
        text = (f"[{datetime.now():%H:%M:%S}][#{report.iteration:06d}][{report.ms:04.0f}ms]"
                f"[{report.loss_src:.4f}][{report.loss_dst:.4f}]")
        if report.event:
            click.echo(("\r" if self.tty else "") + text + f" {report.event}")
            self.dirty = False
        elif self.tty:
            click.echo("\r" + text, nl=False)
            self.dirty = True
        elif time.monotonic() - self.last_print >= 10:
            click.echo(text)
            self.last_print = time.monotonic()

    def __enter__(self) -> "_ConsoleLine":
        return self

    def __exit__(self, *exc) -> None:
        if self.dirty:
            click.echo("")


commands = [train]
