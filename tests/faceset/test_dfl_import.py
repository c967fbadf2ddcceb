"""DeepFaceLab faces import with all their fields; a pickle that would run code is refused and runs nothing."""

from __future__ import annotations

import base64
import builtins
import os
import pickle
import struct

import cv2
import numpy as np
import pytest

from facelab.errors import MetadataError
from facelab.faceset import dfl
from facelab.io.faceimage import read_face, read_meta


def _dfl_jpeg(image: np.ndarray, payload: bytes) -> bytes:
    """A JPEG the way DeepFaceLab writes one: JFIF, then an APP15 segment holding the pickled dict."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = buf.tobytes()
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    segment = b"\xff\xef" + struct.pack(">H", len(payload) + 2) + payload
    return data[:app0_end] + segment + data[app0_end:]


@pytest.fixture
def real_face(faceset_cache):
    return read_face(faceset_cache.folder / faceset_cache.src[0])


def _legit_dict(meta) -> dict:
    mask = np.zeros((128, 128), np.uint8)
    cv2.circle(mask, (64, 64), 40, 255, -1)
    return {
        "face_type": "whole_face",
        "landmarks": meta.landmarks.astype(np.float32),
        "eyebrows_expand_mod": 1.0,
        "source_filename": "00042.png",
        "source_rect": tuple(np.int64(round(v)) for v in meta.source_rect),
        "source_landmarks": meta.source_landmarks.astype(np.float32),
        "image_to_face_mat": meta.face_from_image.astype(np.float64),
        "seg_ie_polys": {"polys": [
            {"type": 1, "pts": np.array([[10, 10], [100, 12], [60, 110]], np.float32)},
            {"type": 0, "pts": np.array([[50, 50], [70, 50], [60, 70]], np.float32)},
        ]},
        "xseg_mask": cv2.imencode(".png", mask)[1],
    }


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_legit_dfl_face_imports_with_all_fields(tmp_path, real_face, protocol):
    image, meta = real_face
    folder = tmp_path / "dfl"
    folder.mkdir()
    source = _legit_dict(meta)
    original = _dfl_jpeg(image, pickle.dumps(source, protocol=protocol))
    (folder / "00042_1.jpg").write_bytes(original)
    written = dfl.import_dfl(folder)
    assert written == [folder / "00042_1.jpg"]
    got_image, got = read_face(written[0])
    assert np.array_equal(got_image, cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR))
    assert dfl.dfl_payload(written[0].read_bytes()) == dfl.dfl_payload(original)  # DFL can still read it
    assert got.face_type == "whole-face" and got.image_size == 128
    assert got.source_filename == "00042.png" and got.face_index == 1
    assert np.allclose(got.landmarks, source["landmarks"])
    assert np.allclose(got.source_landmarks, source["source_landmarks"])
    assert np.allclose(got.face_from_image, source["image_to_face_mat"])
    assert got.source_rect == tuple(float(v) for v in source["source_rect"])
    assert got.mask_polygons == {"include": [[[10, 10], [100, 12], [60, 110]]],
                                 "exclude": [[[50, 50], [70, 50], [60, 70]]]}
    assert got.extra["dfl_eyebrows_expand_mod"] == 1.0
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(got.extra["dfl_xseg_mask"]), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (128, 128) and mask[64, 64] == 255 and mask[0, 0] == 0
    assert abs(got.yaw - meta.yaw) < 1 and abs(got.pitch - meta.pitch) < 1


def test_import_to_an_output_folder_leaves_the_originals(tmp_path, real_face):
    image, meta = real_face
    folder, out = tmp_path / "dfl", tmp_path / "out"
    folder.mkdir()
    original = _dfl_jpeg(image, pickle.dumps(_legit_dict(meta)))
    (folder / "00042_0.jpg").write_bytes(original)
    dfl.import_dfl(folder, out)
    assert (folder / "00042_0.jpg").read_bytes() == original
    assert read_meta(out / "00042_0.jpg").source_filename == "00042.png"


class _RunsCommand:
    """Pickles as a call of ``func(*args)``: what a crafted file would do."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func,global_name", [(os.system, "system"), (builtins.eval, "builtins.eval")])
def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, real_face, func, global_name):
    image, meta = real_face
    marker = tmp_path / "pwned"
    folder = tmp_path / "dfl"
    folder.mkdir()
    evil = _legit_dict(meta)
    command = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    evil["source_filename"] = _RunsCommand(func, command)
    good = _dfl_jpeg(image, pickle.dumps(_legit_dict(meta)))
    (folder / "00001_0.jpg").write_bytes(good)
    (folder / "00002_0.jpg").write_bytes(_dfl_jpeg(image, pickle.dumps(evil)))
    with pytest.raises(MetadataError, match=f"refused global .*{global_name}") as err:
        dfl.import_dfl(folder)
    assert "00002_0.jpg" in str(err.value) and "nothing from it was run" in str(err.value)
    assert not marker.exists()
    assert (folder / "00001_0.jpg").read_bytes() == good  # checked first: nothing was written


def test_other_numpy_globals_are_refused_too():
    class NumpyLoad:
        def __reduce__(self):
            return np.load, ("/etc/passwd",)

    with pytest.raises(dfl.RefusedGlobal, match="numpy"):
        dfl.safe_loads(pickle.dumps({"x": NumpyLoad()}))


def test_codecs_encode_is_only_latin1():
    import _codecs

    assert dfl.safe_loads(pickle.dumps({"b": b"\x00\xff"}, protocol=2)) == {"b": b"\x00\xff"}
    with pytest.raises(dfl.RefusedGlobal, match="zlib"):
        dfl.safe_loads(pickle.dumps(_RunsCommand(_codecs.encode, b"x", "zlib"), protocol=2))


def test_plain_jpeg_and_garbage_give_one_line_errors(tmp_path, real_face):
    image, _ = real_face
    plain = tmp_path / "plain.jpg"
    cv2.imwrite(str(plain), image)
    with pytest.raises(MetadataError, match="no DeepFaceLab metadata"):
        dfl.read_dfl_dict(plain)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(_dfl_jpeg(image, pickle.dumps({"a": 1})[:-5]))
    with pytest.raises(MetadataError, match="corrupt DeepFaceLab metadata"):
        dfl.read_dfl_dict(broken)
    odd = tmp_path / "odd.jpg"
    odd.write_bytes(_dfl_jpeg(image, pickle.dumps({"face_type": "mark_only"})))
    with pytest.raises(MetadataError, match="no facelab equivalent"):
        dfl.meta_from_dfl(dfl.read_dfl_dict(odd), 128, odd)


def _legit_small(meta) -> dict:
    """A legit DFL dict without the xseg mask, leaving room in the 64 KB segment for a crafted field."""
    return {k: v for k, v in _legit_dict(meta).items() if k != "xseg_mask"}


def _deep_list_pickle(meta, depth: int) -> bytes:
    """A legit dict's pickle with one more field: a list nested ``depth`` deep (MARK ... LIST, no recursion
    needed to write it, so no pickler refuses to make it)."""
    legit = pickle.dumps(_legit_small(meta), protocol=2)
    assert legit.endswith(b"u.")
    return legit[:-1] + b"X\x04\x00\x00\x00deep" + b"(" * depth + b"l" * depth + b"s."


def _import_one_bad(tmp_path, real_face, bad_payload: bytes, bad_name: str = "00002_0.jpg"):
    """A folder with one legit face and one crafted one; returns (folder, written)."""
    image, meta = real_face
    folder = tmp_path / "dfl"
    folder.mkdir()
    (folder / "00001_0.jpg").write_bytes(_dfl_jpeg(image, pickle.dumps(_legit_dict(meta))))
    (folder / bad_name).write_bytes(_dfl_jpeg(image, bad_payload))
    return folder, dfl.import_dfl(folder)


def test_30000_deep_pickle_list_is_skipped_with_a_warning(tmp_path, real_face, caplog):
    payload = _deep_list_pickle(real_face[1], 30_000)
    assert len(payload) < 65_000 and isinstance(dfl.safe_loads(payload)["deep"], list)
    folder, written = _import_one_bad(tmp_path, real_face, payload)
    assert written == [folder / "00001_0.jpg"] and read_meta(written[0]).source_filename == "00042.png"
    assert "00002_0.jpg" in caplog.text and f"nested more than {dfl.MAX_DEPTH} levels deep" in caplog.text
    with pytest.raises(MetadataError):
        read_meta(folder / "00002_0.jpg")  # left as it was: no facelab metadata was written into it


def test_a_small_pickle_standing_for_a_huge_tree_is_refused(tmp_path, real_face, caplog):
    shared = [1.0] * 100
    for _ in range(3):
        shared = [shared] * 100  # 10^8 values through the pickle memo, in a few kB
    evil = {**_legit_small(real_face[1]), "bomb": shared}
    payload = pickle.dumps(evil, protocol=2)
    assert len(payload) < 10_000
    _, written = _import_one_bad(tmp_path, real_face, payload)
    assert len(written) == 1 and f"more than {dfl.MAX_VALUES} values" in caplog.text


@pytest.mark.parametrize("kind", [float("inf"), float("nan"), 2, "1", None, [1]])
def test_polygon_type_that_is_not_0_or_1_is_skipped(tmp_path, real_face, caplog, kind):
    evil = _legit_dict(real_face[1])
    evil["seg_ie_polys"]["polys"][0]["type"] = kind
    _, written = _import_one_bad(tmp_path, real_face, pickle.dumps(evil))
    assert len(written) == 1 and "mask polygons are malformed" in caplog.text


def test_polygon_with_infinite_point_is_skipped(tmp_path, real_face, caplog):
    evil = _legit_dict(real_face[1])
    evil["seg_ie_polys"]["polys"][1]["pts"][0, 0] = np.inf
    _, written = _import_one_bad(tmp_path, real_face, pickle.dumps(evil))
    assert len(written) == 1 and "not a finite number" in caplog.text


@pytest.mark.parametrize("name", ["00042_٣.jpg", "00042_².jpg", "00042_" + "9" * 200 + ".jpg"])
def test_face_number_in_unicode_or_huge_digits_is_not_read(tmp_path, real_face, name):
    image, meta = real_face
    folder = tmp_path / "dfl"
    folder.mkdir()
    (folder / name).write_bytes(_dfl_jpeg(image, pickle.dumps(_legit_dict(meta))))
    (written,) = dfl.import_dfl(folder)
    assert read_meta(written).face_index == 0 and read_meta(written).source_filename == "00042.png"


@pytest.mark.parametrize("source", ["../../x/pwned.png", "/etc/passwd", "a\\b.png", 42, b"00001.png"])
def test_source_filename_that_is_not_a_plain_name_is_skipped(tmp_path, real_face, caplog, source):
    evil = _legit_dict(real_face[1])
    evil["source_filename"] = source
    _, written = _import_one_bad(tmp_path, real_face, pickle.dumps(evil))
    assert len(written) == 1 and "source_filename" in caplog.text


def test_no_usable_face_is_a_one_line_error(tmp_path, real_face):
    image, meta = real_face
    folder = tmp_path / "dfl"
    folder.mkdir()
    (folder / "00001_0.jpg").write_bytes(_dfl_jpeg(image, _deep_list_pickle(meta, 30_000)))
    with pytest.raises(MetadataError, match="none of the 1 .jpg files"):
        dfl.import_dfl(folder)


def test_import_dfl_command_skips_a_crafted_face_without_a_traceback(tmp_path, real_face, run_cli):
    folder = tmp_path / "dfl"
    image, meta = real_face
    folder.mkdir()
    (folder / "00001_0.jpg").write_bytes(_dfl_jpeg(image, pickle.dumps(_legit_dict(meta))))
    (folder / "00002_0.jpg").write_bytes(_dfl_jpeg(image, _deep_list_pickle(meta, 30_000)))
    code, out, err = run_cli("faceset", "import-dfl", str(folder))
    assert code == 0 and "Imported 1 DeepFaceLab faces" in out and "Traceback" not in err
