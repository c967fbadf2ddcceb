"""Mask editor page (being written)."""

from __future__ import annotations

from facelab.web.pages import PAGES, Page

PAGE = PAGES.register("masks")(Page("masks", "Mask editor", "Draw include/exclude polygons on aligned faces", lambda ctx: []))
