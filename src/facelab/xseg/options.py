"""XSeg's options, declared once (CLI flags, prompts and checks come from them); no torch here, so the CLI
starts fast."""

from __future__ import annotations

from typing import Any, Mapping

from facelab.errors import OptionError
from facelab.options import Option, validate

STEM = 4  # the net first folds 4 × 4 pixel blocks into channels (see net.py)
LEVELS = 3  # then halves the side this many times: R must be a multiple of STEM · 2**LEVELS = 32
MODEL_NAME = "XSeg"

XSEG_OPTIONS: tuple[Option, ...] = (
    Option("resolution", 256, "Side of the square the segmenter sees, px (a multiple of 32).", min=64, max=512,
           fixed=True),
    Option("channels", 24, "Width of the net's first level (later levels double it, up to 4×); more is slower, "
           "finer.", min=4, max=64, fixed=True),
    Option("batch_size", 8, "Faces per training iteration.", min=1, max=256),
    Option("learning_rate", 5e-4, "Adam learning rate.", min=1e-6, max=1e-2),
    Option("lr_decay", 0.3, "When the run has an end, the learning rate eases down to 5 % of itself over this last "
           "share of it (of the iterations up to --iterations, or of --minutes), so it ends settled; 0: constant.",
           min=0.0, max=1.0),
    Option("save_minutes", 5.0, "Save every this many minutes (and always at the end).", min=0.1, max=600.0),
)


def xseg_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every option checked (defaults where not given); OptionError for a resolution not a multiple of 32."""
    out = validate(XSEG_OPTIONS, values)
    if out["resolution"] % (STEM * 2**LEVELS):
        raise OptionError(f"--resolution got {out['resolution']}", fix=f"use a multiple of {STEM * 2**LEVELS}")
    return out


