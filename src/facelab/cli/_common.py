"""Shared CLI pieces: the --workspace/--yes flags, flags and prompts generated from Option declarations,
a terminal progress bar that listens to library progress events, and the one-line report of a full disk."""

from __future__ import annotations

import errno
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import click
from tqdm import tqdm

from facelab.errors import OptionError
from facelab.options import Option
from facelab.progress import Progress


def workspace_flag(default: Path | None = Path("workspace"), help: str = "The workspace folder.") -> Callable:
    """The -w/--workspace flag every command takes (``default=None`` for a command that works without one)."""
    return click.option("--workspace", "-w", "workspace", type=click.Path(file_okay=False, path_type=Path),
                        default=default, show_default=default is not None, help=help)


workspace_option = workspace_flag()
yes_option = click.option("--yes", "-y", is_flag=True, help="Take every default; never prompt (for scripts).")


def trained_model_flags(func: Callable) -> Callable:
    """--model-dir and --model: which trained model a command uses (merge, export, live)."""
    func = click.option("--model", "model_name", default=None,
                        help="Model name (SAE, SAEHD, H64, ...) when the folder holds several; a model trained on GPU "
                             "N (train --device cuda:N) is also N_NAME, e.g. 1_SAE.")(func)
    return click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder of the trained model [default: WORKSPACE/model].")(func)


faces_dir_argument = click.argument("folder", metavar="[DIR]", required=False,
                                    type=click.Path(file_okay=False, path_type=Path))


def side_option(default: str = "src") -> Callable:
    """--side: the workspace faceset a command taking ``faces_dir_argument`` works on when it is given no DIR."""
    return click.option("--side", type=click.Choice(["src", "dst"]), default=default, show_default=True,
                        help="Without DIR: the workspace's data_src/aligned or data_dst/aligned.")


def on_faces_dir(side: str = "src") -> Callable:
    """DIR, --side, -w and --yes: the arguments of a command working on one faceset folder."""

    def decorate(func: Callable) -> Callable:
        for add in (yes_option, workspace_option, side_option(side), faces_dir_argument):
            func = add(func)
        return func

    return decorate


def faces_dir(folder: Path | None, workspace: Path, side: str) -> Path:
    """DIR when given, else the workspace's data_SIDE/aligned."""
    from facelab.workspace import Workspace

    return folder if folder is not None else Workspace(workspace).aligned(side)  # type: ignore[arg-type]


def workspace_or(positional: Path | None, workspace: Path) -> Path:
    """The workspace a command got as its old positional argument (still taken) or as -w/--workspace."""
    if positional is None:
        return workspace
    given = click.get_current_context().get_parameter_source("workspace") == click.core.ParameterSource.COMMANDLINE
    if given and workspace != positional:
        raise click.UsageError(f"two workspaces given ({positional} and -w {workspace}): give one")
    return positional


def interactive(yes: bool) -> bool:
    """Prompt only when asked for by a person at a terminal: never block a script or a pipe."""
    return not yes and sys.stdin.isatty() and sys.stdout.isatty()


def option_flags(options: Iterable[Option]) -> Callable:
    """A decorator adding one CLI flag per Option. Flags default to None, so 'not given' is visible."""

    def decorate(func: Callable) -> Callable:
        for opt in reversed(list(options)):
            kind = opt.kind
            extra: dict[str, Any] = {}
            if kind is bool:
                func = click.option(opt.flag_names(), opt.name, default=None,
                                    help=f"{opt.help} [default: {_show(opt.default)}]")(func)
                continue
            if opt.choices is not None:
                extra["type"] = OptionChoice(opt)
            elif kind in (int, float):
                extra["type"] = kind
            func = click.option(opt.flag, opt.name, default=None, help=_flag_help(opt), **extra)(func)
        return func

    return decorate


def _flag_help(opt: Option) -> str:
    """``help [default: 8; 1 to 512]``; choices are in the flag's metavar, so only their short names are added."""
    notes = [f"default: {_show(opt.default)}"]
    if opt.choices is None and opt.describe_range():
        notes.append(opt.describe_range())
    if opt.aliases:
        notes.append("or " + ", ".join(f"{short} ({choice})" for short, choice in opt.aliases))
    if opt.numbered:
        notes.append("or a choice's number")
    return f"{opt.help} [{'; '.join(notes)}]"


class OptionChoice(click.Choice):
    """A flag's choices, taking every answer its prompt takes: the seed's short names (``--face-type h``) and,
    for a numbered option, a choice's number. Anything else is refused by click with the list of choices."""

    def __init__(self, option: Option):
        super().__init__([str(c) for c in option.choices])
        self.option = option

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value not in self.choices:
            try:
                value = str(self.option.parse(value))
            except OptionError:
                pass  # click's own message below lists the choices
        return super().convert(value, param, ctx)


def ask(options: Iterable[Option], given: Mapping[str, Any], yes: bool,
        wording: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every option's value: the flag when given, else (at a terminal, without --yes) a prompt, else the default.

    Prompts read like ``Batch size (default 8, ?:help): ``; ``wording`` replaces that text for the options it
    names (the seed's own questions, which its users know). ``?`` prints the help, Enter takes the default.
    """
    values: dict[str, Any] = {}
    ask_user = interactive(yes)
    for opt in options:
        if given.get(opt.name) is not None:
            values[opt.name] = opt.parse(given[opt.name])
        elif ask_user:
            values[opt.name] = _prompt(opt, (wording or {}).get(opt.name))
        else:
            values[opt.name] = opt.default
    return values


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "y" if value else "n"
    return "none" if value is None else str(value)


def _prompt(opt: Option, text: str | None = None) -> Any:
    if text is None:
        text = (f"{opt.label}: {opt.numbered_choices()} (?:help): " if opt.numbered
                else f"{opt.label} (default {_show(opt.default)}, ?:help): ")
    while True:
        answer = input(text).strip()
        if answer == "?":
            click.echo(f"  {opt.help}" + (f" ({opt.describe_range()})" if opt.describe_range() else ""))
            continue
        if answer == "":
            return opt.default
        try:
            return opt.parse(answer)
        except OptionError as err:
            click.echo(f"  {err}")


class ProgressBar:
    """A tqdm bar fed by Progress events; use as ``with ProgressBar() as bar: stage(progress=bar)``."""

    def __init__(self, disable: bool | None = None):
        self._bars: dict[str, tqdm] = {}
        self._disable = disable

    def __call__(self, event: Progress) -> None:
        bar = self._bars.get(event.label)
        if bar is None:
            bar = self._bars[event.label] = tqdm(total=event.total, desc=event.label, unit="it",
                                                 dynamic_ncols=True, disable=self._disable, leave=True)
        if event.total is not None and bar.total != event.total:
            bar.total = event.total
        bar.update(event.done - bar.n)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        for bar in self._bars.values():
            bar.close()


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, which lets NaN through (it compares false with both bounds) and infinity when a
    bound is open: a flag like ``--minutes nan`` is refused with the range instead."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number ({self._describe_range()})", param, ctx)
        return number


def disk_full_message(err: BaseException) -> str | None:
    """The one line shown for an OSError of a full disk (ENOSPC, EDQUOT) that reached the CLI, else None.

    Stages that save (training, merging) raise their own OutputError saying exactly what was kept; this is
    the fallback for any other write.
    """
    if not isinstance(err, OSError) or err.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    where = f" while writing {err.filename}" if err.filename else ""
    return (f"error: the disk is full{where} — free disk space and run the command again; every file facelab "
            "finished before is kept (writes are atomic)")
