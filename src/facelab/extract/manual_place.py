"""Manual face placement: the user puts a square on a frame, the landmarks and the aligned face are cut from it
exactly as ``facelab extract --detector manual`` would, and accepting writes them into the side's aligned folder.

This is the stage logic behind the manual extraction page (``facelab.web.pages.manual``), which only adds the
HTTP routes and a frame cache. Coordinates are frame pixels with the origin at the top-left corner of the
top-left pixel (as in ``facelab.types``); a box is (x0, y0, x1, y1), right/bottom exclusive.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from facelab.errors import InputError, OptionError
from facelab.extract import runner
from facelab.extract.debug import debug_image_name, write_debug_image
from facelab.extract.extractor import Extractor, Face
from facelab.extract.options import ExtractSettings
from facelab.io.faceimage import face_file_name, frame_stem_of, list_faces, write_face
from facelab.io.frames import IMAGE_SUFFIXES, list_images
from facelab.workspace import Workspace

SIDES = ("src", "dst")
MODES = {"need": "frames that need it", "all": "every frame"}
DEFAULTS = ExtractSettings()  # a placed face is cut as `facelab extract` cuts one by default
MIN_BOX = 8.0  # px: dlib gives nonsense below this
MAX_BOXES = 16  # faces placed on one frame at once
BOX_REACH = 1.0  # a square may stick out of the frame by at most this many frame sides (its face is inside)


# -- what to walk ----------------------------------------------------------------------------------------------


def check_side(side: Any) -> str:
    if side not in SIDES:
        raise InputError(f"no such side {str(side)[:40]!r}", fix="choose src or dst")
    return side


def debug_dir_of(ws: Workspace, side: str) -> Path:
    """Where extract writes a side's debug images (the CLI's choice: aligned_debug/ inside data_<side>/)."""
    return ws.aligned_debug if side == "dst" else ws.frames(side) / "aligned_debug"


def frame_names(ws: Workspace, side: str) -> list[str]:
    """The side's frame files, sorted; InputError when there are none (faces extracted straight from a video)."""
    names = [p.name for p in list_images(ws.frames(side))]
    if not names:
        raise InputError(f"no frame images in data_{side}/", path=ws.frames(side),
                         fix=f"extract the frames first: facelab video extract {side}")
    return names


def frames_needing_work(ws: Workspace, side: str, names: list[str]) -> dict[str, str]:
    """{frame name: why it needs manual work} for the frames among ``names`` where no face was found, whose
    debug image the user deleted, or that have no face left in aligned/ (the user moved or deleted them)."""
    aligned = ws.aligned(side)
    no_face = set(runner.read_log(aligned).get("no_face", []))  # read_log checked its entries' shapes
    revisit = set(runner.frames_to_revisit(aligned, debug_dir_of(ws, side)))
    faceless = set(runner.frames_without_faces(names, aligned))
    reasons = {}
    for name in names:
        if name in no_face:
            reasons[name] = "no face found"
        elif name in revisit:
            reasons[name] = "debug image deleted"
        elif name in faceless:
            reasons[name] = "no face in aligned/"
    return reasons


def extract_settings(aligned_dir: Path) -> dict:
    """Face type and image size the last extract run of ``aligned_dir`` used (the options' defaults when the
    log does not say, or says something out of range)."""
    try:
        settings = parse_settings(runner.read_log(aligned_dir).get("settings", {}))
    except OptionError:
        settings = DEFAULTS
    return {"face_type": settings.face_type, "image_size": settings.image_size}


def frame_list(ws: Workspace, side: Any, mode: Any) -> dict:
    """The frames to walk: [{"name", "reason"}], with the defaults for face type and image size."""
    check_side(side)
    if mode not in MODES:
        raise InputError(f"no such mode {str(mode)[:40]!r}",
                         fix="choose need (frames that need it) or all (every frame)")
    names = frame_names(ws, side)
    reasons = frames_needing_work(ws, side, names)
    walk = names if mode == "all" else [n for n in names if n in reasons]
    by_hand = runner.read_log(ws.aligned(side)).get("manual", {})  # frames placed by hand in earlier sessions
    frames = [{"name": n, "reason": reasons.get(n) or (f"placed by hand earlier ({by_hand[n]})" if n in by_hand
                                                        else "")} for n in walk]
    return {"side": side, "mode": mode, "folder": f"data_{side}", "total_frames": len(names), "frames": frames,
            **extract_settings(ws.aligned(side))}


# -- one frame -------------------------------------------------------------------------------------------------


def frame_path(ws: Workspace, side: Any, name: Any) -> Path:
    """The frame file ``name`` of a side (a bare file name; InputError when it is not one of its frames)."""
    check_side(side)
    missing = InputError(f"no frame {str(name)[:80]!r} in data_{side}/",
                         fix="reload the page to get the current frame list")
    if (not isinstance(name, str) or not name or "/" in name or "\\" in name or "\0" in name
            or name.startswith(".") or len(name) > 255):
        raise missing
    path = ws.frames(side) / name
    if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
        raise missing
    return path


def faces_of(aligned_dir: Path, name: str) -> list[Path]:
    """Face files cut from frame ``name`` (``<stem>_<n>.*``)."""
    stem = Path(name).stem
    files = list_faces(aligned_dir) if aligned_dir.is_dir() else []
    return [p for p in files if frame_stem_of(p) == stem]


def parse_box(values: Any, frame_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A user box (x0, y0, x1, y1) in frame pixels; OptionError unless it is 4 finite numbers of a real box
    that reaches no further than BOX_REACH frame sides out of the (width, height) frame."""
    if (not isinstance(values, (list, tuple)) or len(values) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise OptionError("a box is 4 numbers [x0, y0, x1, y1]")
    x0, y0, x1, y1 = (float(v) for v in values)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise OptionError(f"the square must be at least {MIN_BOX:g} px wide", fix="make it bigger with the wheel")
    width, height = frame_size
    reach = BOX_REACH * max(width, height)
    if min(x0, y0) < -reach or x1 > width + reach or y1 > height + reach:
        raise OptionError(f"the square {[x0, y0, x1, y1]} lies outside the {width}×{height} frame",
                          fix="move it over the face")
    return x0, y0, x1, y1


def parse_settings(body: dict) -> ExtractSettings:
    """The settings with the face type and image size asked for (the defaults when not given), checked by the
    very options ``facelab extract`` declares."""
    return ExtractSettings.of(face_type=body.get("face_type") or None, image_size=body.get("image_size"))


def cut_faces(frame: np.ndarray, name: str, body: dict) -> list[Face]:
    """The aligned faces of the body's ``boxes`` on ``frame`` (as the CLI's manual detector cuts them), with its
    ``face_type`` and ``image_size``; OptionError for no boxes, too many or a malformed one."""
    boxes = body.get("boxes") or []
    if not isinstance(boxes, list) or not boxes:
        raise OptionError("no square given", fix="move the square over the face")
    if len(boxes) > MAX_BOXES:
        raise OptionError(f"at most {MAX_BOXES} faces per frame")
    size = (frame.shape[1], frame.shape[0])
    parsed = [parse_box(b, size) for b in boxes]
    settings = parse_settings(body)
    extractor = Extractor("manual", face_type=settings.face_type, image_size=settings.image_size)  # cached models
    return extractor.faces_in_boxes(frame, parsed, name)


# -- accepting a frame's faces ---------------------------------------------------------------------------------


def free_trash(base: Path, names: list[str]) -> Path:
    """``base``, or ``base-2``, ``base-3`` … : the first trash folder where none of ``names`` exists yet, so a
    face moved there never replaces one moved before (two accepts of a frame within a second)."""
    folder, n = base, 1
    while any((folder / name).exists() for name in names):
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def place_faces(ws: Workspace, side: str, name: str, frame: np.ndarray, faces: list[Face],
                trash: Path | None = None) -> dict:
    """Write the faces placed on one frame as ``<stem>_<n>.jpg`` in data_<side>/aligned, after moving the frame's
    earlier faces to ``trash`` (default: a new ``aligned_trash/manual-<time>`` folder; never deleted); redraw its
    debug image (dst, or src when its folder exists) and update the extract log so the frame no longer counts as
    "no face". Returns {"written": [paths], "moved": count, "trash": folder or None, "debug": path or None}."""
    aligned = ws.aligned(side)
    earlier = faces_of(aligned, name)
    if trash is None:
        trash = free_trash(ws.frames(side) / "aligned_trash" / time.strftime("manual-%Y%m%d-%H%M%S"),
                           [p.name for p in earlier])
    moved = runner.move_faces_of(aligned, trash, [name]) if earlier else 0
    written = []
    for image, meta in faces:
        path = aligned / face_file_name(name, meta.face_index)
        write_face(path, image, meta, quality=DEFAULTS.jpeg_quality)
        written.append(path)
    debug_dir = debug_dir_of(ws, side)
    debug = None
    if side == "dst" or debug_dir.is_dir():
        debug = debug_dir / debug_image_name(name)
        write_debug_image(debug, frame, [m for _, m in faces])
    runner.record_manual_faces(aligned, name, len(faces), debug_image=debug is not None)
    return {"written": written, "moved": moved, "trash": trash if moved else None, "debug": debug}
