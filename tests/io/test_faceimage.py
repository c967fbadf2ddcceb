"""Face files from strangers: every wrong metadata field, every damaged container is a MetadataError that names
the file (and the field), never a traceback, and never a face that looks fine."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from facelab.errors import MetadataError
from facelab.io import faceimage
from facelab.io.faceimage import list_faces, read_face, read_meta


def _with_json(path, edit) -> None:
    """Rewrite ``path``'s metadata JSON with ``edit(dict)`` applied, bypassing every check of the writer."""
    data = path.read_bytes()
    meta = read_meta(path).to_json()
    edit(meta)
    payload = json.dumps(meta).encode()  # json.dumps writes NaN / Infinity as JavaScript does
    _with_payload(path, data, payload)


def _with_payload(path, data: bytes, payload: bytes) -> None:
    if path.suffix == ".jpg":
        path.write_bytes(faceimage._jpeg_insert(faceimage._jpeg_strip(data), payload))
    else:
        path.write_bytes(faceimage._png_insert(faceimage._png_strip(data), payload))


def _set(key, value):
    return lambda meta: meta.__setitem__(key, value)


BAD_FIELDS = {
    "yaw": ("yaw", _set("yaw", "left")),
    "image_size 0": ("image_size", _set("image_size", 0)),
    "image_size -256": ("image_size", _set("image_size", -256)),
    "image_size 1e400": ("image_size", _set("image_size", float("inf"))),
    "image_size 300 digits": ("image_size", _set("image_size", 10**300)),
    "source_size Infinity": ("source_size", _set("source_size", [float("inf"), 360])),
    "source_size negative": ("source_size", _set("source_size", [-640, 360])),
    "source_rect of 3": ("source_rect", _set("source_rect", [1.0, 2.0, 3.0])),
    "source_filename a number": ("source_filename", _set("source_filename", 12)),
    "source_filename a path": ("source_filename", _set("source_filename", "../../x/00001.png")),
    "NaN landmarks": ("landmarks", lambda m: m["landmarks"][30].__setitem__(0, float("nan"))),
    "67 landmarks": ("landmarks", lambda m: m["landmarks"].pop()),
    "string landmarks": ("source_landmarks", lambda m: m["source_landmarks"][0].__setitem__(1, "3")),
    "zero face_from_image": ("face_from_image", _set("face_from_image", [[0.0] * 3, [0.0] * 3])),
    "face_from_image 3x3": ("face_from_image", _set("face_from_image", [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])),
    "mask kind": ("mask_polygons", _set("mask_polygons", {"inside": [[[1, 2], [3, 4], [5, 6]]]})),
    "mask two points": ("mask_polygons", _set("mask_polygons", {"include": [[[1, 2], [3, 4]]]})),
    "mask inf point": ("mask_polygons", _set("mask_polygons", {"exclude": [[[1, 2], [3, 4], [5, float("inf")]]]})),
    "mask not a list": ("mask_polygons", _set("mask_polygons", {"include": "everything"})),
    "mask point of 3": ("mask_polygons", _set("mask_polygons", {"include": [[[1, 2, 3], [3, 4, 5], [5, 6, 7]]]})),
    "face_type": ("face_type", _set("face_type", ["full"])),
    "face_index a path": ("face_index", _set("face_index", "/../../x/pwned")),
    "score a string": ("score", _set("score", "0.9")),
    "pitch bool": ("pitch", _set("pitch", True)),
    "missing landmarks": ("landmarks", lambda m: m.pop("landmarks")),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS), ids=list(BAD_FIELDS))
def test_each_wrong_field_is_a_metadata_error_naming_file_and_field(face_file, case):
    field, edit = BAD_FIELDS[case]
    _with_json(face_file, edit)
    for read in (read_meta, read_face):
        with pytest.raises(MetadataError) as caught:
            read(face_file)
        text = str(caught.value)
        assert face_file.name in text and field in text and "\n" not in text


def test_a_real_face_and_unknown_source_size_and_extra_fields_still_read(face_file, real_face):
    _with_json(face_file, lambda m: m.update(source_size=[0, 0], extra={"dfl_eyebrows_expand_mod": 1.0},
                                             future_field=3))
    image, meta = read_face(face_file)
    assert meta.source_size == (0, 0) and meta.extra == {"dfl_eyebrows_expand_mod": 1.0}
    assert np.allclose(meta.landmarks, real_face[1].landmarks) and image.shape == (128, 128, 3)


def test_json_nested_100000_deep_is_refused_before_parsing(face_file):
    good = face_file.read_bytes()
    deep = b'{"extra": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    _with_payload(face_file, good, deep)
    with pytest.raises(MetadataError, match="more than 16"):
        read_meta(face_file)
    # Brackets inside strings are text, not nesting.
    face_file.write_bytes(good)
    _with_json(face_file, lambda m: m.update(detector="[" * 1000))
    assert read_meta(face_file).detector == "[" * 1000


def test_writing_refuses_metadata_that_reading_would_refuse(tmp_path, real_face):
    image, meta = real_face
    bad = type(meta)(**{**meta.__dict__})
    bad.yaw = float("nan")
    with pytest.raises(MetadataError, match="yaw"):
        faceimage.write_face(tmp_path / "x.jpg", image, bad)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MetadataError, match="face_from_image must be an invertible"):
        type(meta)(**{**meta.__dict__, "face_from_image": np.zeros((2, 3))})


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_text(path, body: bytes) -> None:
    data = faceimage._png_strip(path.read_bytes())
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + _png_chunk(b"iTXt", body) + data[iend:])


@pytest.mark.parametrize("body, reason", [
    (b"facelab\0\x01\x00\0\0" + b"not zlib at all", "not valid zlib"),
    (b"facelab\0\x01\x00en" + b"x" * 40, "NUL separators"),
    (b"facelab\0", "NUL separators"),
    (b"facelab\0\x01\x00\0\0" + zlib.compress(b"{" * 10)[:-6], "cut short"),
], ids=["bad zlib", "no NUL separators", "no flags", "zlib cut short"])
def test_damaged_png_text_chunk(real_face, tmp_path, body, reason):
    path = tmp_path / "00001_0.png"
    faceimage.write_face(path, *real_face)
    _png_with_text(path, body)
    with pytest.raises(MetadataError, match=f"00001_0.png.*{reason}"):
        read_meta(path)


def test_png_text_chunk_with_a_flipped_bit_fails_its_checksum(real_face, tmp_path):
    path = tmp_path / "00001_0.png"
    faceimage.write_face(path, *real_face)
    data = bytearray(path.read_bytes())
    at = data.index(b"facelab\0") + 20
    data[at] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(MetadataError, match="checksum"):
        read_meta(path)


def test_png_zlib_bomb_is_refused_without_inflating_it(real_face, tmp_path):
    path = tmp_path / "00001_0.png"
    faceimage.write_face(path, *real_face)
    _png_with_text(path, b"facelab\0\x01\x00\0\0" + zlib.compress(b" " * (faceimage.MAX_PAYLOAD + 1), 9))
    with pytest.raises(MetadataError, match="larger than"):
        read_meta(path)


def test_jpeg_segment_without_its_index_bytes(real_face, tmp_path):
    path = tmp_path / "00001_0.jpg"
    faceimage.write_face(path, *real_face)
    data = faceimage._jpeg_strip(path.read_bytes())
    segment = b"\xff\xea" + struct.pack(">H", 2 + 8) + b"facelab\0"
    path.write_bytes(data[:2] + segment + data[2:])
    with pytest.raises(MetadataError, match="00001_0.jpg.*index bytes"):
        read_meta(path)


def test_jpeg_segment_missing_a_piece_or_running_past_the_end(real_face, tmp_path):
    path = tmp_path / "00001_0.jpg"
    faceimage.write_face(path, *real_face)
    data = path.read_bytes()
    piece = data.index(b"facelab\0")
    path.write_bytes(data[: piece + 9] + b"\x02" + data[piece + 10 :])  # claims 2 pieces, has 1
    with pytest.raises(MetadataError, match="missing"):
        read_meta(path)
    path.write_bytes(data[: piece - 2] + b"\xff\xff" + data[piece:])  # length past the end of the file
    with pytest.raises(MetadataError, match="runs past the end"):
        read_meta(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_face_file_cut_short_is_damaged_not_a_fine_face(face_file, keep):
    data = face_file.read_bytes()
    face_file.write_bytes(data[: int(len(data) * keep) if keep > 0 else keep])
    for read in (read_meta, read_face):
        with pytest.raises(MetadataError, match="cut short"):
            read(face_file)


def test_face_header_claiming_a_huge_image_is_refused_before_decoding(real_face, tmp_path):
    path = tmp_path / "00001_0.png"
    faceimage.write_face(path, *real_face)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    assert faceimage.image_header_size(bytes(data)) == (100_000, 100_000)
    for read in (read_meta, read_face):
        with pytest.raises(MetadataError, match="100000×100000"):
            read(path)


def test_not_an_image_and_no_metadata(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(MetadataError, match="notes.jpg.*not a JPEG or PNG"):
        read_meta(tmp_path / "notes.jpg")


def test_hidden_temp_files_of_an_interrupted_write_are_not_faces(face_file):
    folder = face_file.parent
    (folder / ".00013_0.k2j4h1_x.jpg").write_bytes(b"")  # what a kill during write_face leaves
    (folder / "00013_0_debug.jpg").write_bytes(b"")
    assert list_faces(folder) == [face_file]
