"""Manual extraction page (being written)."""

from __future__ import annotations

from facelab.web.pages import PAGES, Page

PAGE = PAGES.register("manual")(Page("manual", "Manual extraction", "Place faces by hand on the frames where detection failed", lambda ctx: []))
