"""The models the web pages swap with: trained ones by name and exported files by file name, each loaded once and
again when its weights change (e.g. while `facelab train` runs), shared by every page and socket of the UI."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facelab.device import DEVICE_OPTION
from facelab.errors import ModelError
from facelab.export.formats import SUFFIXES

STATE_KEY = "models"


@dataclass
class ModelCache:
    """The swappers of the workspace's model folder: trained models by name and exported files by file name, each
    loaded once and again when its weights change (e.g. while `facelab train` runs)."""

    folder: Path
    device: str = DEVICE_OPTION.default
    lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def names(self) -> list[str]:
        from facelab.train.checkpoint import find_models

        exported = sorted(p.name for p in self.folder.glob("*") if p.suffix.lower() in SUFFIXES and p.is_file()) \
            if self.folder.is_dir() else []
        return find_models(self.folder) + exported

    def get(self, name: str):
        """The loaded swapper ``name`` (one of ``names()``, so never a path); ModelError otherwise."""
        return self.stamped(name)[1]

    def stamped(self, name: str) -> tuple[int, Any]:
        """(weights file stamp, loaded swapper) of ``name``: the stamp says when a cached prediction is stale."""
        from facelab.export.runtime import load_swapper
        from facelab.train.checkpoint import ModelFiles

        if not isinstance(name, str) or name not in self.names():
            raise ModelError(f"no {str(name)[:80]!r} model in this workspace", path=self.folder,
                             fix="pick one of the models listed, or train one with `facelab train`")
        exported = Path(name).suffix.lower() in SUFFIXES
        weights = self.folder / name if exported else ModelFiles(self.folder, name).weights
        if not weights.is_file():
            raise ModelError(f"no trained {name} model in this workspace", path=self.folder,
                             fix="train one with `facelab train`")
        stamp = weights.stat().st_mtime_ns
        with self.lock:
            if name not in self.loaded or self.loaded[name][0] != stamp:
                swapper = load_swapper(weights if exported else self.folder, None if exported else name,
                                       self.device)
                self.loaded[name] = (stamp, swapper)
            return self.loaded[name]


def model_cache(ctx) -> ModelCache:
    """The UI's one ModelCache (in ``ctx.state``)."""
    with ctx.lock:
        return ctx.state.setdefault(STATE_KEY, ModelCache(ctx.workspace.model))
