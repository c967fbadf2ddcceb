"""Registry, options and face-file metadata: the contracts every stage relies on."""

from __future__ import annotations

import numpy as np
import pytest

from facelab.errors import MetadataError, OptionError
from facelab.io import faceimage
from facelab.options import Option, validate
from facelab.registry import Registry
from facelab.types import FaceMeta


def test_registry_suggests_close_name():
    reg = Registry[int]("detector")
    reg.register("retinaface")(1)
    assert reg.get("retinaface") == 1
    with pytest.raises(OptionError, match="did you mean 'retinaface'"):
        reg.get("retinafce")


def test_option_range_in_message():
    opt = Option("batch_size", 8, "Faces per step.", min=1, max=512)
    assert validate([opt], {"batch_size": "16"}) == {"batch_size": 16}
    with pytest.raises(OptionError, match="1 to 512"):
        opt.parse(0)
    with pytest.raises(OptionError, match="not a int"):
        opt.parse("eight")
    assert Option("flip", True, "Random flip.").parse("n") is False


@pytest.mark.parametrize("value", ["nan", float("nan"), "inf", "-inf", float("inf"), 1e400])
def test_non_finite_numbers_fail_every_range_check_with_the_range(value):
    rate = Option("learning_rate", 5e-5, "Adam learning rate.", min=1e-6, max=1e-2)
    with pytest.raises(OptionError, match=r"--learning-rate got .*, out of range — use 1e-06 to 0.01"):
        rate.parse(value)
    fps = Option("fps", 0.0, "Frames per second.", min=0, max=1000)
    with pytest.raises(OptionError, match=r"--fps got .*, out of range — use 0 to 1000"):
        fps.parse(value)
    with pytest.raises(OptionError, match=r"--batch-size got .*(not a int|out of range) — 1 to 512"):
        Option("batch_size", 8, "Faces per step.", min=1, max=512).parse(value)


def test_values_of_the_wrong_type_are_refused():
    assert Option("scale", 1.0, "A scale.").parse("inf") == float("inf")  # no range: infinity may mean "no limit"
    with pytest.raises(OptionError, match="--scale got nan, not a number"):
        Option("scale", 1.0, "A scale.").parse("nan")
    with pytest.raises(OptionError, match="--batch-size got True, which is not a int"):
        Option("batch_size", 8, "Faces per step.", min=1).parse(True)
    with pytest.raises(OptionError, match=r"--archi got \['df'\], which is not a str"):
        Option("archi", "df", "Architecture.").parse(["df"])


def test_cli_float_flags_refuse_nan_and_infinity(run_cli, tmp_path, src_video):
    workspace = tmp_path / "ws"
    for flag in (["train", "--minutes", "nan", "--yes"], ["train", "--minutes", "inf", "--yes"],
                 ["demo", "--minutes", "nan"], ["demo", "--dst-seconds", "inf"]):
        result = run_cli(*flag, "-w", str(workspace))
        assert result.code == 2 and "is not a finite number" in result.err, (flag, result)
    workspace.mkdir()
    (workspace / "data_src.mp4").symlink_to(src_video)
    result = run_cli("video", "extract", "src", "-w", str(workspace), "--fps", "nan", "--yes")
    assert result.code == 2 and "--fps got nan, out of range — use 0 to 1000" in result.err, result


def _meta(rng) -> FaceMeta:
    return FaceMeta(
        face_type="full", image_size=64, landmarks=rng.random((68, 2)) * 64,
        source_filename="00001.png", source_size=(640, 360), source_rect=(10.0, 20.0, 110.0, 140.0),
        source_landmarks=rng.random((68, 2)) * 300, face_from_image=rng.random((2, 3)),
        detector="retinaface", score=0.99, pitch=1.5, yaw=-3.25, roll=0.5, tool_version="0.1.0",
        mask_polygons={"include": [[[1.0, 2.0], [3.0, 4.0], [5.0, 1.0]]], "exclude": []},
    )


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_face_metadata_round_trips_exactly(tmp_path, suffix):
    rng = np.random.default_rng(0)
    meta = _meta(rng)
    image = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    path = tmp_path / f"00001_0{suffix}"
    faceimage.write_face(path, image, meta)
    back_image, back = faceimage.read_face(path)
    assert back.to_json() == meta.to_json()
    assert faceimage.read_meta(path).to_json() == meta.to_json()
    if suffix == ".png":
        assert np.array_equal(back_image, image)
    # Replacing the metadata keeps the pixels bit-exact.
    meta.yaw = 12.0
    before = faceimage.read_face(path)[0]
    faceimage.write_meta(path, meta)
    assert faceimage.read_meta(path).yaw == 12.0
    assert np.array_equal(faceimage.read_face(path)[0], before)


def test_missing_and_corrupt_metadata_name_the_file(tmp_path):
    import cv2

    plain = tmp_path / "plain.jpg"
    cv2.imwrite(str(plain), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(MetadataError, match="plain.jpg.*no facelab metadata"):
        faceimage.read_meta(plain)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(MetadataError, match="notes.jpg"):
        faceimage.read_meta(text)
    # Valid JPEG structure, JSON of the wrong shape inside.
    good = tmp_path / "bad.jpg"
    meta = _meta(np.random.default_rng(1))
    faceimage.write_face(good, np.zeros((8, 8, 3), np.uint8), meta)
    data = good.read_bytes().replace(b'"face_type":"full"', b'"face_type":"nope"')
    good.write_bytes(data)
    with pytest.raises(MetadataError, match="bad.jpg.*corrupt"):
        faceimage.read_meta(good)
