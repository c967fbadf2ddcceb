"""Progress events: stages report through a callback so a terminal bar and a web page can both listen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units (``total`` is None when unknown) of the step called ``label``."""

    label: str
    done: int
    total: Optional[int]


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """The default listener: stages work silently as library calls."""
