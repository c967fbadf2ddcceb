"""The `facelab` command line: one sub-command module per step, found and registered automatically.

Each module in this package (not starting with ``_``) exposes ``commands``: a list of click commands or groups.
Only the CLI prints and exits; library errors arrive as FacelabError and become one line here.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import click

from facelab import __version__
from facelab.cli._common import disk_full_message
from facelab.errors import FacelabError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="facelab")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """facelab — swap a face in a video: extract, curate, train, merge, assemble.

    Use only with the consent of the people shown. Every merged frame and video is labelled as synthetic.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        for _command in importlib.import_module(f"{__name__}.{_info.name}").commands:
            cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: FacelabError → one line on stderr and exit code 2; --debug shows the traceback."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in _global_args(args)
    try:
        cli.main(args=args, prog_name="facelab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except FacelabError as err:
        if debug:
            raise
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except OSError as err:
        message = disk_full_message(err)
        if debug or message is None:
            raise
        click.echo(message, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


def _global_args(args: list[str]) -> list[str]:
    """The arguments before the sub-command: `facelab --debug extract ...` (not `extract --debug`)."""
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            return args[:i]
    return args
