"""`facelab ui`: the browser UI for the interactive steps, served locally with an access token."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import workspace_option, workspace_or, yes_option
from facelab.errors import WorkspaceError


@click.command("ui")
# The positional WORKSPACE is the older spelling, kept so scripts that use it still work.
@click.argument("root", metavar="[WORKSPACE]", required=False, type=click.Path(file_okay=False, path_type=Path))
@workspace_option
@yes_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback exposes your workspace to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7777, show_default=True,
              help="Port (the next free one is taken when busy; 0: any free port).")
@click.option("--token", default=None, help="Access token [default: a new random one].")
def ui(root: Path | None, workspace: Path, yes: bool, host: str, port: int, token: str | None) -> None:
    """Serve the training preview, manual extraction, mask editor, faceset browser and merge tuner.

    Open the printed URL (it carries the access token). On a remote machine, forward the port over SSH:
    `ssh -L 7777:127.0.0.1:7777 HOST`, then open the URL on your own machine. Ctrl-C stops the server.
    It asks nothing (--yes is taken for scripts that pass it to every command).
    """
    from facelab.web.server import is_loopback, start

    workspace = workspace_or(root, workspace)
    if not workspace.is_dir():
        raise WorkspaceError("no such workspace folder", path=workspace,
                             fix="create it with `facelab workspace create`")
    if not is_loopback(host):
        click.echo(f"Warning: listening on {host}: anyone who can reach it and has the token can read and change "
                   "this workspace. Prefer SSH port forwarding.", err=True)
    start(workspace, host, port, token, background=False, announce=lambda url: click.echo(
        f"facelab UI for {workspace.resolve()}:\n    {url}\nCtrl-C stops it."))


commands = [ui]
