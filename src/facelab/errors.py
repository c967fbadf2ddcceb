"""The errors a user sees. Each says what failed and how to fix it; only the CLI prints them."""

from __future__ import annotations


class FacelabError(Exception):
    """Base of every error facelab reports to a user.

    ``str(err)`` is one line that names the file (when there is one) and the fix.
    """

    def __init__(self, message: str, *, path: object | None = None, fix: str | None = None):
        self.message = message
        self.path = path
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path is not None else self.message
        return f"{text} — {self.fix}" if self.fix else text


class InputError(FacelabError):
    """A file or folder the user gave is missing, unreadable or of the wrong kind."""


class VideoError(InputError):
    """A video cannot be probed, decoded or written."""


class MetadataError(InputError):
    """An aligned face carries no, corrupt or unsafe metadata."""


class OutputError(FacelabError):
    """An output cannot be written (permissions, disk full, ...)."""


class OptionError(FacelabError):
    """An option value is out of range or not one of its choices."""


class ModelError(FacelabError):
    """A model file is missing, truncated, or does not match the options it was made with."""


class DeviceError(FacelabError):
    """The requested device does not exist or ran out of memory."""


class WorkspaceError(FacelabError):
    """The workspace is missing a part a step needs."""
