"""`facelab sort [DIR] --by METHOD`: order a faceset for cleaning; discarded faces go to DIR_trash."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import (ProgressBar, ask, faces_dir, faces_dir_argument, interactive, option_flags,
                                 side_option, workspace_option, yes_option)
from facelab.faceset.options import METHOD_OPTIONS, SORT_OPTIONS

class _SortCommand(click.Command):
    """Lists the sort methods at the end of `facelab sort --help` (imported only then: keeps --help fast)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from facelab.faceset.sort import SORT_METHODS

        with formatter.section("Methods"):
            formatter.write_dl([(name, SORT_METHODS.get(name).help) for name in SORT_METHODS])


def _choose_method(yes: bool) -> str:
    from facelab.faceset.sort import SORT_METHODS

    names = SORT_METHODS.names()
    if not interactive(yes):
        raise click.UsageError("choose a method with --by (see `facelab sort --help`)")
    click.echo("Choose a sort method:")
    for i, name in enumerate(names):
        click.echo(f"  [{i}] {name:17} {SORT_METHODS.get(name).help}")
    while True:
        answer = input("Method (number or name, default 0): ").strip() or "0"
        if answer.isdigit() and int(answer) < len(names):
            return names[int(answer)]
        if answer in SORT_METHODS:
            return answer
        click.echo(f"  choose 0 to {len(names) - 1} or a name")


@click.command("sort", cls=_SortCommand)
@faces_dir_argument
@click.option("--by", "method", default=None, help="Sort method (listed below); asked at a terminal.")
@side_option()
@option_flags(SORT_OPTIONS)
@workspace_option
@yes_option
def sort(folder: Path | None, method: str | None, side: str, workspace: Path, yes: bool, **given) -> None:
    """Sort the faces in DIR (default: the workspace's data_src/aligned) and rename them 00000.jpg … in order.

    Faces a method discards go to DIR_trash beside DIR; nothing is deleted. Renaming is crash-safe.
    """
    from facelab.faceset.sort import SORT_METHODS, sort_faceset

    folder = faces_dir(folder, workspace, side)
    method = method if method is not None else _choose_method(yes)
    SORT_METHODS.get(method)  # an unknown name fails here with "did you mean", before any prompt
    wanted = METHOD_OPTIONS.get(method, [])
    values = ask([o for o in SORT_OPTIONS if o.name in wanted], given, yes)
    with ProgressBar() as bar:
        result = sort_faceset(folder, method, values, progress=bar)
    click.echo(f"Sorted {len(result.kept)} faces in {folder} by {method}.")
    if result.trashed:
        click.echo(f"Moved {len(result.trashed)} faces to {result.trashed[0].parent}.")
    if result.skipped:
        names = ", ".join(p.name for p in result.skipped[:5]) + (" ..." if len(result.skipped) > 5 else "")
        click.echo(f"Skipped {len(result.skipped)} unreadable faces, left under their names: {names} "
                   "(the warnings above say why).")


commands = [sort]
