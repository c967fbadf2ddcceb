"""Aligned face files that carry their metadata inside: JSON in a JPEG APP10 segment or a PNG iTXt chunk.

Reading never executes anything from the file: the metadata is JSON, parsed by ``json.loads``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path, PurePath

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError
from facelab.io.files import write_bytes_atomic
from facelab.io.safe_json import loads_bounded
from facelab.types import MAX_FACE_SIZE, FaceMeta

_JPEG_MARKER = 0xFFEA  # APP10: unused by JFIF/Exif/Adobe/ICC, so other tools leave it alone
_JPEG_TAG = b"facelab\0"
_PNG_KEY = b"facelab"
_SEGMENT_ROOM = 65533 - len(_JPEG_TAG) - 2  # a segment's length field counts itself; 2 bytes for index/count
FACE_SUFFIXES = (".jpg", ".jpeg", ".png")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_FRAMES = {0xFFC0 | n for n in range(16)} - {0xFFC4, 0xFFC8, 0xFFCC}  # SOFn; C4/C8/CC are other markers
MAX_PAYLOAD = 32 * 2**20  # bytes of metadata JSON; a face's own is ~10 kB, 255 full JPEG segments ~16 MiB
MAX_JSON_DEPTH = 16  # our metadata nests 5 deep (mask polygons); a deeper payload is not ours


def encode_face(image: np.ndarray, meta: FaceMeta, suffix: str = ".jpg", quality: int = 95) -> bytes:
    """Encode an aligned face (H, W, 3) uint8 BGR with its metadata into JPEG or PNG bytes (the metadata is
    checked first, so a face is never written with metadata that reading would refuse)."""
    meta.validate()
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
    """Metadata of a face file without decoding its pixels; the file is checked to be whole (a JPEG that ends
    before its end-of-image marker, a PNG without IEND) and the metadata against the FaceMeta schema.
    MetadataError naming the file and, for bad metadata, the field."""
    path = Path(path)
    return _parse(path, _read_bytes(path))


def read_face(path: str | Path) -> tuple[np.ndarray, FaceMeta]:
    """(image (H, W, 3) uint8 BGR, metadata) of a face file; MetadataError when either is damaged."""
    path = Path(path)
    data = _read_bytes(path)
    meta = _parse(path, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MetadataError("the image data is corrupt", path=path, fix="re-extract this face")
    return image, meta


def write_meta(path: str | Path, meta: FaceMeta) -> None:
    """Replace a face file's metadata, keeping its pixels bit-exact."""
    path = Path(path)
    data = _read_bytes(path)
    meta.validate()
    payload = json.dumps(meta.to_json(), separators=(",", ":")).encode()
    try:
        if data[:2] == b"\xff\xd8":
            out = _jpeg_insert(_jpeg_strip(data), payload)
        elif data[:8] == _PNG_SIGNATURE:
            out = _png_insert(_png_strip(data), payload)
        else:
            raise MetadataError("not a JPEG or PNG face file")
    except MetadataError as err:
        raise MetadataError(err.message, path=path, fix=err.fix) from None
    write_bytes_atomic(path, out)


def face_file_name(frame_name: str, face_index: int, suffix: str = ".jpg") -> str:
    """``<frame stem>_<n><suffix>``: the file extraction writes for face ``n`` (0: the largest) of a frame."""
    return f"{PurePath(frame_name).stem}_{face_index}{suffix}"


def frame_stem_of(face: str | Path) -> str:
    """The stem of the frame a face file was cut from (``00001_0.jpg`` → ``00001``): ``face_file_name`` undone."""
    return PurePath(face).stem.rsplit("_", 1)[0]


def list_faces(folder: str | Path) -> list[Path]:
    """Face image files in ``folder`` (not recursive), sorted by name. Not faces: hidden files (the temp files
    of an interrupted write are ``.<name>.XXXXXXXX.jpg``) and the ``*_debug.jpg`` landmark pictures
    `facelab faceset debug-landmarks` puts beside the faces."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("folder not found", path=folder, fix="run the extract step first or check the path")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in FACE_SUFFIXES and not p.name.startswith(".")
                  and not p.stem.endswith("_debug") and p.is_file())


def image_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a JPEG's frame header or a PNG's IHDR states, read without decoding; None for other
    files or when the header cannot be found. Lets callers refuse huge images before allocating them."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] != b"\xff\xd8":
        return None
    try:
        for marker, start, end in jpeg_segments(data):
            if marker in _JPEG_FRAMES and end - start >= 9:
                height, width = struct.unpack(">HH", data[start + 5 : start + 9])
                return width, height
    except MetadataError:
        return None
    return None


# -- internals ---------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", path=path, fix="check the path") from None
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", path=path) from None


def _parse(path: Path, data: bytes) -> FaceMeta:
    """The checked metadata of a face file's bytes; every problem becomes a MetadataError naming ``path``."""
    try:
        _check_whole(data)
        payload = _extract_payload(data)
        if payload is None:
            raise MetadataError("no facelab metadata in this image",
                                fix="use faces written by `facelab extract` (or `facelab faceset import-dfl`)")
        return FaceMeta.from_json(_load_json(payload))
    except MetadataError as err:
        raise MetadataError(err.message, path=path, fix=err.fix or "re-extract this face") from None


def _load_json(payload: bytes) -> object:
    try:
        return loads_bounded(payload, MAX_JSON_DEPTH)
    except ValueError as err:
        raise MetadataError(f"corrupt facelab metadata ({err})") from None


def _check_whole(data: bytes) -> None:
    """MetadataError for a face file cut short (the image would decode with grey or missing rows) or whose
    header claims a size no face has (decoding it could allocate gigabytes)."""
    size = image_header_size(data)
    if size is not None and not 0 < max(size) <= MAX_FACE_SIZE:
        raise MetadataError(f"the image claims to be {size[0]}×{size[1]} px, more than a face can be "
                            f"({MAX_FACE_SIZE} px)")
    if data[:2] == b"\xff\xd8":
        scan = 2
        for _marker, _start, scan in jpeg_segments(data):
            pass
        if data[scan : scan + 2] != b"\xff\xda" or data.rfind(b"\xff\xd9", scan) < 0:
            raise MetadataError("the image data is cut short (no JPEG end-of-image marker)")
    elif data[:8] == _PNG_SIGNATURE:
        if not any(kind == b"IEND" for kind, _start, _end in _png_chunks(data)):
            raise MetadataError("the image data is cut short (no PNG IEND chunk)")


def _extract_payload(data: bytes) -> bytes | None:
    if data[:2] == b"\xff\xd8":
        return _jpeg_payload(data)
    if data[:8] == _PNG_SIGNATURE:
        return _png_payload(data)
    raise MetadataError("not a JPEG or PNG file", fix="faces are .jpg or .png files")


def jpeg_segments(data: bytes):
    """Yield (marker as 0xFFxx, start, end) of each header segment of a JPEG (after its 2-byte SOI) up to the
    start of scan; a segment's body is ``data[start + 4 : end]``. MetadataError for a segment that runs past
    the end of the file."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no more headers
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise MetadataError("the JPEG header is cut short or damaged (a segment runs past the end of the file)")
        yield 0xFF00 | marker, pos, pos + 2 + length
        pos += 2 + length


def _jpeg_payload(data: bytes) -> bytes | None:
    """The JSON spread over our APP10 segments (each: tag, index, count, piece)."""
    parts: dict[int, bytes] = {}
    counts = set()
    head = len(_JPEG_TAG)
    for marker, start, end in jpeg_segments(data):
        body = data[start + 4 : end]
        if marker == _JPEG_MARKER and body.startswith(_JPEG_TAG):
            if len(body) < head + 2:
                raise MetadataError("a facelab metadata segment lacks its index bytes")
            index, count = body[head], body[head + 1]
            if index >= count or index in parts:
                raise MetadataError(f"facelab metadata segment {index} of {count} is repeated or out of range")
            parts[index] = body[head + 2 :]
            counts.add(count)
    if not parts:
        return None
    if len(counts) != 1 or len(parts) != counts.pop():
        raise MetadataError("facelab metadata segments are missing or disagree on their count")
    return b"".join(parts[i] for i in range(len(parts)))


def _jpeg_strip(data: bytes) -> bytes:
    out, last = [data[:2]], 2
    for marker, start, end in jpeg_segments(data):
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
    for marker, _start, end in jpeg_segments(data):
        if marker == 0xFFE0:
            insert_at = end
        break
    return data[:insert_at] + segments + data[insert_at:]


def _png_chunks(data: bytes):
    """Yield (kind, start, end) of each chunk; MetadataError for a chunk that runs past the end of the file."""
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            raise MetadataError(f"the PNG is cut short (its {kind!r} chunk runs past the end of the file)")
        yield kind, pos, pos + 12 + length
        pos += 12 + length


def _png_payload(data: bytes) -> bytes | None:
    """Our iTXt chunk's text: keyword NUL, compression flag and method, language NUL, translated keyword NUL,
    text (zlib-compressed when the flag is 1)."""
    for kind, start, end in _png_chunks(data):
        body = data[start + 8 : end - 4]
        if kind != b"iTXt" or not body.startswith(_PNG_KEY + b"\0"):
            continue
        if struct.unpack(">I", data[end - 4 : end])[0] != zlib.crc32(kind + body):
            raise MetadataError("the facelab PNG text chunk fails its checksum")
        rest = body[len(_PNG_KEY) + 1 :]
        fields = rest[2:].split(b"\0", 2)
        if len(rest) < 2 or len(fields) != 3:
            raise MetadataError("the facelab PNG text chunk lacks its NUL separators")
        return _inflate(fields[2]) if rest[0] else fields[2]
    return None


def _inflate(data: bytes) -> bytes:
    """zlib-decompress at most MAX_PAYLOAD bytes (a small chunk cannot expand into gigabytes)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_PAYLOAD)
    except zlib.error as err:
        raise MetadataError(f"the facelab PNG text is not valid zlib data ({err})") from None
    if inflater.unconsumed_tail:
        raise MetadataError(f"the facelab metadata is larger than {MAX_PAYLOAD // 2**20} MiB")
    if not inflater.eof:
        raise MetadataError("the facelab PNG text is cut short")
    return out


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
