"""Map a path sent by the browser to a file inside the workspace, or refuse it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from facelab.errors import FacelabError


class PathRefused(FacelabError):
    """A browser asked for a path outside the workspace (``..``, absolute, or a link leading out)."""


def inside_workspace(root: Path, relative: str) -> Path:
    """``root / relative`` when it stays inside ``root`` after resolving links; PathRefused otherwise.

    ``relative`` uses ``/`` separators; absolute paths and any ``..`` part are refused outright, so a request
    cannot probe for what exists outside.
    """
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if relative.startswith(("/", "\\")) or any(p == ".." for p in parts) or (parts and ":" in parts[0]):
        raise PathRefused(f"path {relative!r} is outside the workspace")
    base = root.resolve()
    target = base.joinpath(*parts).resolve() if parts else base
    if target != base and base not in target.parents:
        raise PathRefused(f"path {relative!r} leads outside the workspace")
    return target


def relative_to_workspace(root: Path, path: Path) -> str:
    """The ``/``-separated path of ``path`` inside ``root``, as the browser sends it back."""
    return Path(path).resolve().relative_to(root.resolve()).as_posix()
