"""Merge tuner page (being written)."""

from __future__ import annotations

from facelab.web.pages import PAGES, Page

PAGE = PAGES.register("merge")(Page("merge", "Merge tuner", "Tune merge options on one frame with a live preview", lambda ctx: []))
