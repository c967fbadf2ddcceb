"""The UI's pages: each module registers one Page in PAGES with its HTML file and its API routes."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from facelab.registry import Registry

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from facelab.web.server import UiContext

# In the order of the nav bar (the pipeline's order).
PAGE_MODULES = ("manual", "masks", "faceset", "training", "merge", "live")


@dataclass(frozen=True)
class Page:
    """``/<name>`` serves ``static/<name>.html``; ``routes(ctx)`` gives its API, under ``/api/<name>/``."""

    name: str
    title: str
    help: str
    routes: Callable[["UiContext"], list["BaseRoute"]]


PAGES = Registry[Page]("page")


def load_pages() -> list[Page]:
    for module in PAGE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return [PAGES.get(name) for name in PAGE_MODULES]
