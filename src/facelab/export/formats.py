"""The two export formats' graph conventions and the facts an exported file carries in its ONNX metadata.

Both formats hold the same graph: aligned dst faces (N, R, R, 3) float32 BGR in [0, 1] in; the swapped face
(N, R, R, 3) and two masks (N, R, R, 1), all float32 in [0, 1], out. N is dynamic, R fixed. They differ in the
tensor names and what is always present:

- ``dfm`` follows DeepFaceLive's DFM loader: the input is named ``in_face:0`` (it feeds that name); an optional
  second input ``morph_value:0`` (1,) float32; it unpacks the three outputs by position as (dst face mask,
  celeb face, celeb face mask), named ``out_face_mask:0``, ``out_celeb_face:0``, ``out_celeb_face_mask:0``.
  DeepFaceLive always reads three outputs, so a model without a learned mask gives masks of ones there.
- ``onnx`` uses facelab's own plain names and leaves the masks out when the model learns none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from facelab.errors import ModelError
from facelab.types import FaceType

MAX_RESOLUTION = 1024  # beyond any model facelab trains (256) or DeepFaceLive ships (320): a hostile number
META_PREFIX = "facelab."
META_VERSION = 1


@dataclass(frozen=True)
class GraphNames:
    """Tensor names of one format. ``outputs`` in graph order; ``face``/``swap_mask``/``dst_mask`` name the
    swapped face, its mask and the dst face's mask among them."""

    face_input: str
    morph_input: str
    face: str
    swap_mask: str
    dst_mask: str
    outputs: tuple[str, ...]
    masks_always: bool  # three outputs even for a model without a learned mask (ones)


FORMATS: dict[str, GraphNames] = {
    "dfm": GraphNames("in_face:0", "morph_value:0", "out_celeb_face:0", "out_celeb_face_mask:0",
                      "out_face_mask:0", ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"),
                      masks_always=True),
    "onnx": GraphNames("dst_face", "morph_value", "swapped_face", "swapped_mask", "dst_mask",
                       ("swapped_face", "swapped_mask", "dst_mask"), masks_always=False),
}
SUFFIXES = {f".{name}": name for name in FORMATS}


@dataclass(frozen=True)
class ExportedInfo:
    """What an exported file says about its model: how dst faces must be aligned and where it came from."""

    model: str
    face_type: str
    resolution: int
    learn_mask: bool
    iteration: int
    morph: bool
    format: str


def metadata_props(info: ExportedInfo) -> dict[str, str]:
    """ONNX ``metadata_props`` for ``info``: the synthetic-media label (``provenance.label_container``, whose JSON
    record repeats the facts) and one ``facelab.*`` key per fact, each a plain string."""
    from facelab import provenance  # here: it loads OpenCV, and the CLI imports this module for --help

    facts = {"model": info.model, "face_type": info.face_type, "resolution": info.resolution,
             "learn_mask": info.learn_mask, "iteration": info.iteration, "morph": info.morph, "format": info.format}
    props = provenance.label_container(step="export", **facts)
    props.update({META_PREFIX + key: json.dumps(value) for key, value in facts.items()})
    props[META_PREFIX + "version"] = str(META_VERSION)
    return props


def read_info(props: Mapping[str, str], where: object) -> ExportedInfo | None:
    """The facts of a facelab-exported file from its metadata, None when it has no ``facelab.*`` keys (a file
    exported elsewhere). ModelError for keys that are there but malformed: the file is a stranger's, so every
    value is checked for type and range before use."""
    if not any(isinstance(k, str) and k.startswith(META_PREFIX) for k in props):
        return None

    def get(key: str, kind: type) -> Any:
        text = props.get(META_PREFIX + key)
        try:
            value = json.loads(text) if isinstance(text, str) and len(text) < 200 else None
        except (ValueError, RecursionError):
            value = None
        if kind is int and isinstance(value, bool):
            value = None
        if not isinstance(value, kind):
            raise ModelError(f"metadata {META_PREFIX}{key} is missing or not a valid {kind.__name__}", path=where,
                             fix="export the model again with `facelab export`")
        return value

    info = ExportedInfo(get("model", str), get("face_type", str), get("resolution", int), get("learn_mask", bool),
                        get("iteration", int), get("morph", bool), get("format", str))
    if info.face_type not in {t.value for t in FaceType}:
        raise ModelError(f"metadata face type {info.face_type[:40]!r} is not one facelab knows", path=where,
                         fix=f"use one of {', '.join(t.value for t in FaceType)}; export the model again")
    if not 16 <= info.resolution <= MAX_RESOLUTION or not 0 <= info.iteration < 2 ** 53:
        raise ModelError(f"metadata resolution {info.resolution} or iteration {info.iteration} is out of range",
                         path=where, fix="export the model again with `facelab export`")
    if info.format not in FORMATS or not info.model.isprintable() or not 0 < len(info.model) <= 100:
        raise ModelError("metadata format or model name is malformed", path=where,
                         fix="export the model again with `facelab export`")
    return info


def face_side(shape: Any, where: object) -> int:
    """R of a face tensor shape (batch, R, R, channels) as ONNX Runtime reports it (batch may be a name);
    ModelError unless the sides are equal whole numbers in range."""
    ok = isinstance(shape, (list, tuple)) and len(shape) == 4 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in shape[1:3])
    if not ok or shape[1] != shape[2] or not 16 <= shape[1] <= MAX_RESOLUTION:
        raise ModelError(f"face tensor shape {str(shape)[:60]} is not (N, R, R, C) with 16 <= R <= "
                         f"{MAX_RESOLUTION}", path=where, fix="give a face-swap model exported by facelab or "
                         "DeepFaceLab (.dfm)")
    return int(shape[1])

