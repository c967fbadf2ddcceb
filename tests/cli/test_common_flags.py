"""Every command a user meets takes the same workspace and --yes flags (issue 15, CLI consistency)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from facelab.cli import cli

# Commands that work on no workspace, so -w would be a flag that does nothing: xseg remove / fetch take the faces
# folder they work on as their argument.
NO_WORKSPACE = {"xseg remove", "xseg fetch"}


def _commands(group: click.Group = cli, prefix: str = ""):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


COMMANDS = list(_commands())


def test_the_walk_finds_every_step():
    assert {"extract", "sort", "train", "merge", "score", "ui", "verify", "faceset info", "faceset png2jpg",
            "video assemble", "workspace create"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_workspace_and_yes(command):
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "-y, --yes" in result.output
    if command not in NO_WORKSPACE:
        assert "-w, --workspace" in result.output


def test_an_options_flag_words_are_read_back_by_its_own_click_flag():
    """The words the multi-GPU relaunch writes for an option are the flags `option_flags` declares for it."""
    import click as _click
    from click.testing import CliRunner

    from facelab.cli._common import option_flags
    from facelab.options import Option

    options = [Option("rotate_retry", False, "turn frames"), Option("image_size", 256, "side", min=64)]

    @_click.command()
    @option_flags(options)
    def show(**values):
        _click.echo(repr(sorted(values.items())))

    turn, size = options
    for words, want in (([], [("image_size", None), ("rotate_retry", None)]),
                        (turn.as_flags(True) + size.as_flags(128), [("image_size", 128), ("rotate_retry", True)]),
                        (turn.as_flags(False) + size.as_flags(None), [("image_size", None), ("rotate_retry", False)])):
        result = CliRunner().invoke(show, words)
        assert result.exit_code == 0 and result.output.strip() == repr(want), (words, result.output)
    assert options[0].as_flags(False) == ["--no-rotate-retry"] and options[1].flag_names() == "--image-size"
