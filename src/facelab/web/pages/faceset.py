"""Faceset page (being written)."""

from __future__ import annotations

from facelab.web.pages import PAGES, Page

PAGE = PAGES.register("faceset")(Page("faceset", "Faceset", "Browse, sort and trash aligned faces", lambda ctx: []))
