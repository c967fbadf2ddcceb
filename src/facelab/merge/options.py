"""Merge options, declared once (CLI flags, prompts, the web tuner), and the saved settings file.

``MODEL_DIR/merge_settings.json`` (written by the merge tuner, read by ``facelab merge``)::

    {"version": 1,
     "global": {"mode": "seamless", "erode": 10, ...},
     "ranges": [{"first": 10, "last": 50, "options": {"blur": 40}}, ...]}

``first``/``last`` are 1-based frame numbers, inclusive: the frame's position in ``data_dst/`` sorted by name
(which is the number in ``00010.png`` for extracted frames). For a frame the value of an
option is, from weakest to strongest: the default, ``global``, the CLI flag given this run, then the last range
that holds the frame (the tuner's per-shot choices win over a flag meant for the whole video).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from facelab.errors import OptionError
from facelab.geometry.colour import COLOUR_TRANSFERS
from facelab.io.files import write_json_atomic
from facelab.io.safe_json import loads_bounded
from facelab.merge.masks import MASKS
from facelab.merge.modes import MODES
from facelab.options import Option, validate

SETTINGS_FILE = "merge_settings.json"

MERGE_OPTIONS: tuple[Option, ...] = (
    Option("mode", "seamless", f"How the face goes in: {MODES.describe()}.",
           choices=tuple(MODES.names()), prompt="Choose mode", numbered=True),
    Option("mask", "auto", f"Mask: {MASKS.describe()}; products with '*'; seg-* need a trained segmenter; auto = "
           "learned when the model learns a mask, else dst.", choices=(*MASKS.names(), "auto"), prompt="Mask mode",
           numbered=True),
    Option("masked_hist_match", True, "Histogram-match only inside the mask (hist-match modes).",
           prompt="Masked hist match"),
    Option("hist_match_threshold", 255, "Clip histograms at this height before matching (255 = plain matching; "
           "lower damps dominant tones).", min=0, max=255, prompt="Hist match threshold"),
    Option("erode", 0, "Shrink (>0) or grow (<0) the mask; 400 = the face's width.", min=-400, max=400,
           prompt="Erode mask"),
    Option("blur", 0, "Feather the mask's edge; 400 = the face's width.", min=0, max=400, prompt="Blur mask"),
    Option("face_scale", 0, "Scale the pasted face by this many percent (-50 shrinks, 50 grows).", min=-50, max=50,
           prompt="Output face scale"),
    Option("colour_transfer", "rct",
           f"Match the predicted face's colours to the dst face: {COLOUR_TRANSFERS.describe()}.",
           choices=tuple(COLOUR_TRANSFERS.names()), prompt="Colour transfer", numbered=True),
    Option("super_resolution", False, "Upscale the predicted face with Real-ESRGAN before it is pasted: sharper "
           "edges, e.g. the eyes (~0.3 s per face on a CPU; needs the optional extra: ./run.sh extras).",
           prompt="Apply super resolution"),
    Option("degrade_colour", 0, "Reduce the face's colours toward 252 levels, in percent, to match low-quality "
           "footage.", min=0, max=100, prompt="Degrade colour power"),
    Option("export_alpha", False, "Write merged frames as PNG with an alpha channel holding the face mask.",
           prompt="Export PNG with alpha"),
)
OPTION_NAMES = tuple(o.name for o in MERGE_OPTIONS)


@dataclass(frozen=True)
class FrameRange:
    first: int
    last: int
    options: dict[str, Any]


@dataclass(frozen=True)
class MergeSettings:
    """Resolved option values: ``base`` for every frame, ``ranges`` overriding it for some frames."""

    base: dict[str, Any]
    ranges: tuple[FrameRange, ...] = field(default_factory=tuple)

    def for_frame(self, number: int) -> dict[str, Any]:
        values = dict(self.base)
        for r in self.ranges:
            if r.first <= number <= r.last:
                values.update(r.options)
        return values


def load_settings_file(path: Path) -> tuple[dict[str, Any], tuple[FrameRange, ...]]:
    """(global values, ranges) from a settings file; ({}, ()) when the file does not exist."""
    if not path.is_file():
        return {}, ()
    try:
        data = loads_bounded(path.read_bytes())
        glob = _check(data.get("global", {}), path)
        ranges = tuple(
            FrameRange(int(r["first"]), int(r["last"]), _check(r.get("options", {}), path))
            for r in data.get("ranges", [])
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise OptionError(f"unreadable merge settings ({err})", path=path,
                          fix="fix or delete the file (the merge tuner rewrites it)") from None
    return glob, ranges


def _check(values: Mapping[str, Any], path: Path) -> dict[str, Any]:
    unknown = set(values) - set(OPTION_NAMES)
    if unknown:
        raise OptionError(f"unknown merge options {sorted(unknown)}", path=path, fix=f"use {', '.join(OPTION_NAMES)}")
    by_name = {o.name: o for o in MERGE_OPTIONS}
    return {name: by_name[name].parse(value) for name, value in values.items()}


def options_with_defaults(saved: Mapping[str, Any]) -> tuple[Option, ...]:
    """MERGE_OPTIONS with defaults replaced by saved values (so prompts offer what was saved)."""
    return tuple(replace(o, default=saved[o.name]) if o.name in saved else o for o in MERGE_OPTIONS)


def resolve(given: Mapping[str, Any], settings_path: Path | None = None) -> MergeSettings:
    """Defaults < settings file's global < ``given`` (not None) < the file's ranges, per frame."""
    glob, ranges = load_settings_file(settings_path) if settings_path is not None else ({}, ())
    base = validate(MERGE_OPTIONS, {**glob, **{k: v for k, v in given.items() if v is not None}})
    return MergeSettings(base, ranges)


def save_settings(path: Path, global_values: Mapping[str, Any], ranges: Iterable[FrameRange] = ()) -> None:
    """Write the settings file atomically (the format in this module's docstring)."""
    data = {"version": 1, "global": dict(global_values),
            "ranges": [{"first": r.first, "last": r.last, "options": r.options} for r in ranges]}
    write_json_atomic(path, data)
