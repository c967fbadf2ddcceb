"""Aligned face files that carry their metadata inside: JSON in a JPEG APP10 segment or a PNG iTXt chunk.

Reading never executes anything from the file: the metadata is JSON, parsed by ``json.loads``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError
from facelab.io.files import write_bytes_atomic
from facelab.types import FaceMeta

_JPEG_MARKER = 0xFFEA  # APP10: unused by JFIF/Exif/Adobe/ICC, so other tools leave it alone
_JPEG_TAG = b"facelab\0"
_PNG_KEY = b"facelab"
_SEGMENT_ROOM = 65533 - len(_JPEG_TAG) - 2  # a segment's length field counts itself; 2 bytes for index/count
FACE_SUFFIXES = (".jpg", ".jpeg", ".png")


def encode_face(image: np.ndarray, meta: FaceMeta, suffix: str = ".jpg", quality: int = 95) -> bytes:
    """Encode an aligned face (H, W, 3) uint8 BGR with its metadata into JPEG or PNG bytes."""
    payload = json.dumps(meta.to_json(), separators=(",", ":")).encode()
    if suffix.lower() in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise InputError("could not encode the face as JPEG")
        return _jpeg_insert(buf.tobytes(), payload)
    if suffix.lower() == ".png":
        ok, buf = cv2.imencode(".png", image)
        if not ok:
            raise InputError("could not encode the face as PNG")
        return _png_insert(buf.tobytes(), payload)
    raise InputError(f"unsupported face file type {suffix!r}", fix="use .jpg or .png")


def write_face(path: str | Path, image: np.ndarray, meta: FaceMeta, quality: int = 95) -> None:
    """Write an aligned face file atomically (temp file + rename)."""
    path = Path(path)
    write_bytes_atomic(path, encode_face(image, meta, path.suffix, quality))


def read_meta(path: str | Path) -> FaceMeta:
    """Metadata of a face file without decoding its pixels. Raises MetadataError naming the file."""
    path = Path(path)
    data = _read_bytes(path)
    return _parse_meta(path, _extract_payload(path, data))


def read_face(path: str | Path) -> tuple[np.ndarray, FaceMeta]:
    """(image (H, W, 3) uint8 BGR, metadata) of a face file."""
    path = Path(path)
    data = _read_bytes(path)
    meta = _parse_meta(path, _extract_payload(path, data))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("the image data is corrupt", path=path, fix="re-extract this face")
    return image, meta


def write_meta(path: str | Path, meta: FaceMeta) -> None:
    """Replace a face file's metadata, keeping its pixels bit-exact."""
    path = Path(path)
    data = _read_bytes(path)
    payload = json.dumps(meta.to_json(), separators=(",", ":")).encode()
    if data[:2] == b"\xff\xd8":
        out = _jpeg_insert(_jpeg_strip(data), payload)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        out = _png_insert(_png_strip(data), payload)
    else:
        raise MetadataError("not a JPEG or PNG face file", path=path)
    write_bytes_atomic(path, out)


def list_faces(folder: str | Path) -> list[Path]:
    """Face image files in ``folder`` (not recursive), sorted by name; the ``*_debug.jpg`` landmark pictures
    `facelab faceset debug-landmarks` puts beside the faces are not faces."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", path=folder, fix="run the extract step first or check the path")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in FACE_SUFFIXES and not p.stem.endswith("_debug") and p.is_file())


# -- internals ---------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path=path, fix="check the path") from None
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", path=path) from None


def _parse_meta(path: Path, payload: bytes | None) -> FaceMeta:
    if payload is None:
        raise MetadataError("no facelab metadata in this image", path=path,
                            fix="use faces written by `facelab extract` (or `facelab faceset import-dfl`)")
    try:
        return FaceMeta.from_json(json.loads(payload.decode()))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise MetadataError(f"corrupt facelab metadata ({err})", path=path, fix="re-extract this face") from None


def _extract_payload(path: Path, data: bytes) -> bytes | None:
    if data[:2] == b"\xff\xd8":
        return _jpeg_payload(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_payload(data)
    raise MetadataError("not a JPEG or PNG file", path=path, fix="faces are .jpg or .png files")


def _jpeg_segments(data: bytes):
    """Yield (marker, start, end) of each header segment up to the start of scan."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no more headers
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        yield 0xFF00 | marker, pos, pos + 2 + length
        pos += 2 + length


def _jpeg_payload(data: bytes) -> bytes | None:
    parts: dict[int, bytes] = {}
    count = 0
    for marker, start, end in _jpeg_segments(data):
        body = data[start + 4 : end]
        if marker == _JPEG_MARKER and body.startswith(_JPEG_TAG):
            index, count = body[len(_JPEG_TAG)], body[len(_JPEG_TAG) + 1]
            parts[index] = body[len(_JPEG_TAG) + 2 :]
    if not parts:
        return None
    if sorted(parts) != list(range(count)):
        return b""  # missing pieces: reported as corrupt by the JSON parse
    return b"".join(parts[i] for i in range(count))


def _jpeg_strip(data: bytes) -> bytes:
    out, last = [data[:2]], 2
    for marker, start, end in _jpeg_segments(data):
        if marker == _JPEG_MARKER and data[start + 4 : end].startswith(_JPEG_TAG):
            out.append(data[last:start])
            last = end
    out.append(data[last:])
    return b"".join(out)


def _jpeg_insert(data: bytes, payload: bytes) -> bytes:
    chunks = [payload[i : i + _SEGMENT_ROOM] for i in range(0, len(payload), _SEGMENT_ROOM)] or [b""]
    if len(chunks) > 255:
        raise InputError("face metadata too large to store", fix="simplify the mask polygons")
    segments = b"".join(
        struct.pack(">HH", _JPEG_MARKER, 2 + len(_JPEG_TAG) + 2 + len(c)) + _JPEG_TAG + bytes([i, len(chunks)]) + c
        for i, c in enumerate(chunks)
    )
    # After SOI and a leading APP0 (JFIF), so viewers still see a normal JFIF file.
    insert_at = 2
    for marker, _start, end in _jpeg_segments(data):
        if marker == 0xFFE0:
            insert_at = end
        break
    return data[:insert_at] + segments + data[insert_at:]


def _png_chunks(data: bytes):
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        yield kind, pos, pos + 12 + length
        pos += 12 + length


def _png_payload(data: bytes) -> bytes | None:
    for kind, start, end in _png_chunks(data):
        if kind == b"iTXt":
            body = data[start + 8 : end - 4]
            if body.startswith(_PNG_KEY + b"\0"):
                # keyword\0 compression-flag compression-method language\0 translated\0 text
                rest = body[len(_PNG_KEY) + 1 :]
                flag = rest[0]
                rest = rest[2:]
                rest = rest[rest.index(b"\0") + 1 :]
                rest = rest[rest.index(b"\0") + 1 :]
                return zlib.decompress(rest) if flag else rest
    return None


def _png_strip(data: bytes) -> bytes:
    out, last = [data[:8]], 8
    for kind, start, end in _png_chunks(data):
        if kind == b"iTXt" and data[start + 8 : end - 4].startswith(_PNG_KEY + b"\0"):
            out.append(data[last:start])
            last = end
    out.append(data[last:])
    return b"".join(out)


def _png_insert(data: bytes, payload: bytes) -> bytes:
    body = _PNG_KEY + b"\0" + b"\x01\x00" + b"\0" + b"\0" + zlib.compress(payload)
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]
