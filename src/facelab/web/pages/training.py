"""Training page (being written)."""

from __future__ import annotations

from facelab.web.pages import PAGES, Page

PAGE = PAGES.register("training")(Page("training", "Training", "Live preview and loss graph of the model in training", lambda ctx: []))
