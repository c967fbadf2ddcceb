"""`facelab train`: train (or resume) a face-swap model on the workspace's src and dst facesets."""

from __future__ import annotations

import logging
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

from facelab.cli._common import (FiniteFloatRange, ProgressBar, ask, interactive, option_flags, workspace_option,
                                 yes_option)
from facelab.device import DEVICE_OPTION, chosen_gpu_index
from facelab.options import Option
from facelab.train.options import COMMON_OPTIONS, RUN_OPTIONS, resume_options, split_run_flags, with_defaults
from facelab.workspace import Workspace

DEFAULT_MODEL = "SAE"
OVERRIDE_SECONDS = 2.0


class _TrainCommand(click.Command):
    """Adds --model and one flag per model option on first use: the model registry lives beside torch, which
    `facelab --help` never loads."""

    _model_params_added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._model_params_added:
            self._model_params_added = True
            self.params.insert(1, _model_param())  # right after --workspace
            self.params.extend(_model_option_params())
        return super().get_params(ctx)


def _model_names() -> list[str]:
    from facelab.train.models import MODELS

    return MODELS.names()


def _model_param() -> click.Option:
    return click.Option(["--model", "model_name"], type=click.Choice(_model_names()), default=None,
                        help=f"Model architecture (asked at a terminal; default {DEFAULT_MODEL}, or the model "
                             "already in --model-dir).")


def _model_option_params() -> list[click.Option]:
    """One flag per model option name across all models (parsed later by the chosen model's own Option)."""
    from facelab.train.models import MODELS
    from facelab.train.models.build import option_specs

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
        params.append(click.Option([opt.flag_names(), opt.name], default=None, help=help_text,
                                   **({} if opt.kind is bool else {"type": str})))
    return params


@click.command("train", cls=_TrainCommand)
@workspace_option
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the model is saved [default: WORKSPACE/model].")
@click.option("--src-aligned", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The src faceset [default: WORKSPACE/data_src/aligned].")
@click.option("--dst-aligned", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The dst faces [default: WORKSPACE/data_dst/aligned].")
@click.option("--pretrain-faceset", default=None,
              help="Pretrain: both sides learn this faceset of many people; the iteration count restarts after "
                   "(SAE keeps it as an option: pass '' to end pretraining).")
@click.option("--device", default=DEVICE_OPTION.default, show_default=True,
              help=DEVICE_OPTION.help + " On cuda:N the model's files are named N_MODEL (a model per GPU).")
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Stop after this many iterations.")
@click.option("--minutes", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Stop after this many minutes.")
@click.option("--ui", "with_ui", is_flag=True,
              help="Also serve the browser UI (live preview, loss graph, save/stop buttons) while training; "
                   "prints its URL with an access token.")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=7777, show_default=True,
              help="Port of --ui on 127.0.0.1 (the next free one when busy; 0: any free port).")
@option_flags(COMMON_OPTIONS)
@yes_option
def train(workspace: Path, model_dir: Path | None, src_aligned: Path | None, dst_aligned: Path | None,
          pretrain_faceset: str | None, device: str, iterations: int | None, minutes: float | None, with_ui: bool,
          ui_port: int, yes: bool, model_name: str | None = None, **given: Any) -> None:
    """Train a model; Enter (at a terminal) or Ctrl-C saves and stops. Run again to resume.

    On a new model every option is asked (or taken from flags / defaults with --yes) and saved with it.
    On a saved model, press Enter within 2 seconds to change the options that may change; architecture
    options stay fixed. --target-iteration, --save-minutes and --workers given as flags apply to this run only
    (answer their prompts to save them with the model).
    Several GPUs: `torchrun --nproc-per-node N $(which facelab) train --yes ...` (one process per GPU, DDP).
    """
    from facelab.train import checkpoint
    from facelab.train.models.build import option_specs
    from facelab.train.trainer import train_model

    ws = Workspace(workspace)
    model_dir = model_dir or ws.model
    # A GPU picked by index (--device cuda:1) trains the model whose files carry that index (1_SAE_...).
    gpu_index = chosen_gpu_index(device)
    existing = [checkpoint.parse_saved_name(n) for n in checkpoint.find_models(model_dir)]
    model_name = _choose_model(model_name, model_dir, yes, [m for m, i in existing if i == gpu_index])
    specs = option_specs(model_name)
    if any(o.name == "pretrain_faceset" for o in specs):
        given["pretrain_faceset"], pretrain_faceset = pretrain_faceset, None
    foreign = [k for k, v in given.items() if v is not None and k not in {o.name for o in specs}]
    if foreign:
        raise click.UsageError(f"--{foreign[0].replace('_', '-')} is not an option of model {model_name}")
    given, run_flags = split_run_flags(given)
    files = checkpoint.ModelFiles(model_dir, checkpoint.saved_name(model_name, gpu_index))
    if files.exists():
        options = resume_options(specs, checkpoint.load_options(files), given)
        if interactive(yes) and _enter_within(OVERRIDE_SECONDS):
            changeable = [o for o in with_defaults(specs, options) if not o.fixed and o.name not in run_flags]
            options.update(ask(changeable, {}, yes=False))
        click.echo(f"Resuming {files.name} in {model_dir}.")
    else:
        if interactive(yes):
            click.echo(f"New {files.name} model in {model_dir}: choose its options (Enter takes the default).")
        options = ask(specs, {**given, **run_flags}, yes)  # a run flag given is not asked ...
        options.update({o.name: o.default for o in specs if o.name in run_flags})  # ... nor saved
    if device.strip().lower() == "all" and "WORLD_SIZE" not in os.environ:
        gpus = _gpu_count()
        if gpus > 1:
            _relaunch_on_gpus(gpus, specs, options, run_flags)
            return
    ui = _start_ui(ws, model_dir, ui_port) if with_ui and os.environ.get("RANK", "0") == "0" else None
    if sys.stdin.isatty():
        _drop_typeahead()
        click.echo("Training: press Enter to save and stop (Ctrl-C works too).")
    logging.getLogger("facelab.train.samples").setLevel(logging.INFO)  # its line: XSeg or hull+polygons masks
    try:
        with ProgressBar() as bar, _ConsoleLine() as line:
            result = train_model(model_dir, src_aligned or ws.aligned("src"), dst_aligned or ws.aligned("dst"),
                                 model_name, options, run_options=run_flags, max_iterations=iterations,
                                 max_seconds=minutes * 60 if minutes else None, device=device, progress=bar,
                                 pretrain_faceset=Path(pretrain_faceset) if pretrain_faceset else None,
                                 on_iteration=line, should_stop=_enter_pressed if sys.stdin.isatty() else None,
                                 gpu_index=gpu_index)
    finally:
        if ui is not None:
            ui.stop()
    if os.environ.get("RANK", "0") != "0":  # under torchrun only the first process reports
        return
    losses = "" if math.isnan(result.loss_src) else f"src loss {result.loss_src:.4f}, dst loss {result.loss_dst:.4f}; "
    click.echo(f"Saved {files.name} at iteration {result.iteration} in {model_dir} ({losses}stopped: {result.stopped_by}).")


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


def _relaunch_on_gpus(gpus: int, specs, options: dict[str, Any], run_flags: dict[str, Any]) -> None:
    """Run this same command under torchrun, one DDP process per GPU, with the options settled here (the run
    options only where given as flags, so the processes save none of them)."""
    flags = []
    for o in specs:
        if o.name in RUN_OPTIONS and o.name not in run_flags:
            continue
        flags += o.as_flags(run_flags.get(o.name, options[o.name]))
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
    return click.prompt("Model", type=click.Choice(_model_names()), default=default)


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
