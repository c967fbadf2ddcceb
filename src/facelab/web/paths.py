"""Map a path sent by the browser to a file inside the workspace, or refuse it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from facelab.errors import FacelabError, InputError

MAX_PATH = 1024  # characters of a workspace-relative path sent by the browser
MAX_NAME = 255  # characters of one of its parts (what file systems allow)


class PathRefused(FacelabError):
    """A browser asked for a path outside the workspace (``..``, absolute, or a link leading out)."""


def inside_workspace(root: Path, relative: str) -> Path:
    """``root / relative`` when it stays inside ``root`` after resolving links; PathRefused otherwise.

    ``relative`` uses ``/`` separators; absolute paths and any ``..`` part are refused outright, so a request
    cannot probe for what exists outside. A malformed path (NUL or control characters, over MAX_PATH characters
    or a part over MAX_NAME) is InputError.
    """
    if not isinstance(relative, str):
        raise InputError("a path must be a string", fix="reload the page")
    if len(relative) > MAX_PATH or any(ord(c) < 32 for c in relative):
        raise InputError(f"malformed path {relative[:60]!r}{'…' if len(relative) > 60 else ''}: over {MAX_PATH} "
                         "characters or with control characters", fix="pick the file from the page's lists")
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if relative.startswith(("/", "\\")) or any(p == ".." for p in parts) or (parts and ":" in parts[0]):
        raise PathRefused(f"path {relative!r} is outside the workspace")
    if any(len(p) > MAX_NAME for p in parts):
        raise InputError(f"malformed path {relative[:60]!r}…: a name over {MAX_NAME} characters")
    base = root.resolve()
    try:
        target = base.joinpath(*parts).resolve() if parts else base
    except (OSError, RuntimeError) as err:  # a link loop, a name the file system refuses
        raise InputError(f"cannot follow the path {relative!r} ({err})") from None
    if target != base and base not in target.parents:
        raise PathRefused(f"path {relative!r} leads outside the workspace")
    return target
