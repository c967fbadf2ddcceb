"""OnnxSwapper: the FaceSwapper contract of train.swap.Swapper on an exported file; hostile and foreign files."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from facelab.errors import DeviceError, ModelError
from facelab.export.exporter import with_metadata
from facelab.export.runtime import OnnxSwapper, load_swapper, providers_for
from facelab.train.swap import Swapper


@pytest.fixture(scope="module")
def sae(trained):
    return trained("SAE")


def _with_props(src, dst, changes: dict[str, str | None]):
    """A copy of the exported ``src`` at ``dst`` with metadata keys set (a value) or removed (None)."""
    model = onnx.load(str(src))
    kept = [p for p in model.metadata_props if p.key not in changes]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    dst.write_bytes(with_metadata(model.SerializeToString(), {k: v for k, v in changes.items() if v is not None}))
    return dst


def test_predict_keeps_swappers_contract_and_answers(sae, dst_faces_of):
    onnx_swapper, torch_swapper = OnnxSwapper.load(sae.dfm, "cpu"), Swapper.load(sae.model_dir, device="cpu")
    faces = dst_faces_of("full", 64)
    got, want = onnx_swapper.predict(faces), torch_swapper.predict(faces)
    assert [a.shape for a in got] == [b.shape for b in want] == [(len(faces), 64, 64, 3), (len(faces), 64, 64),
                                                                  (len(faces), 64, 64)]
    for a, b in zip(got, want):
        assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
        np.testing.assert_allclose(a, b, atol=2e-3)
    onnx_swapper.batch_size = 2  # batching does not change the answer
    np.testing.assert_allclose(onnx_swapper.predict(faces)[0], got[0], atol=1e-6)
    empty = onnx_swapper.predict(np.zeros((0, 64, 64, 3), np.uint8))
    assert empty[0].shape == (0, 64, 64, 3) and empty[1].shape == empty[2].shape == (0, 64, 64)
    assert onnx_swapper.device == "cpu"


def test_masks_not_wanted_are_not_computed_and_the_face_is_unchanged(sae, dst_faces_of):
    onnx_swapper, torch_swapper = OnnxSwapper.load(sae.dfm, "cpu"), Swapper.load(sae.model_dir, device="cpu")
    faces = dst_faces_of("full", 64)
    full = onnx_swapper.predict(faces)
    face, swap_mask, dst_mask = onnx_swapper.predict(faces, (False, False))
    assert swap_mask is None and dst_mask is None
    np.testing.assert_array_equal(face, full[0])
    face, swap_mask, dst_mask = onnx_swapper.predict(faces, (True, False))
    assert dst_mask is None
    np.testing.assert_array_equal(swap_mask, full[1])
    face, swap_mask, dst_mask = onnx_swapper.predict(faces, (False, True))
    assert swap_mask is None
    np.testing.assert_array_equal(dst_mask, full[2])
    assert torch_swapper.predict(faces, (True, False))[2] is None


def test_predict_refuses_faces_of_the_wrong_size_or_type(sae, dst_faces_of):
    swapper = OnnxSwapper.load(sae.dfm, "cpu")
    with pytest.raises(ModelError, match=r"must be \(N, 64, 64, 3\) uint8"):
        swapper.predict(np.zeros((2, 128, 128, 3), np.uint8))
    with pytest.raises(ModelError, match="uint8"):
        swapper.predict(dst_faces_of("full", 64).astype(np.float32))


@pytest.mark.parametrize("changes, message", [
    ({"facelab.face_type": '"../../etc"'}, "face type '../../etc' is not one facelab knows"),
    ({"facelab.resolution": "128"}, "takes 64 px faces but its metadata says 128"),
    ({"facelab.resolution": "1e9"}, "facelab.resolution is missing or not a valid int"),
    ({"facelab.resolution": "true"}, "facelab.resolution is missing or not a valid int"),
    ({"facelab.resolution": "100000"}, "out of range"),
    ({"facelab.iteration": "-3"}, "out of range"),
    ({"facelab.format": '"tflite"'}, "format or model name is malformed"),
    ({"facelab.model": None}, "facelab.model is missing"),
    ({"facelab.morph": "true"}, "do not match its dfm metadata"),
])
def test_hostile_metadata_is_refused_with_a_clear_error(sae, tmp_path, changes, message):
    path = _with_props(sae.dfm, tmp_path / "hostile.dfm", changes)
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OnnxSwapper.load(path, "cpu")


def test_a_dfm_without_facelab_metadata_loads_the_way_deepfacelive_reads_it(trained, tmp_path, dst_faces_of):
    """A DeepFaceLab .dfm carries no facelab keys: its resolution comes from in_face's shape, its outputs by
    position, its face type is DeepFaceLive's default (whole face)."""
    model = trained("SAEHD")  # liae: has morph_value
    keys = [p.key for p in onnx.load(str(model.dfm)).metadata_props]
    path = _with_props(model.dfm, tmp_path / "Someone.dfm", dict.fromkeys(keys))
    foreign, ours = OnnxSwapper.load(path, "cpu"), OnnxSwapper.load(model.dfm, "cpu")
    assert (foreign.name, foreign.face_type, foreign.resolution, foreign.learn_mask, foreign.morph) == (
        "Someone", "whole-face", 64, True, True)
    faces = dst_faces_of("full", 64)
    for a, b in zip(foreign.predict(faces), ours.predict(faces)):
        np.testing.assert_array_equal(a, b)  # morph_value fed as 1.0: the plain swap


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx.export of the stand-in graphs
def test_files_that_are_no_face_swap_model_are_refused(tmp_path):
    import torch

    garbage = tmp_path / "garbage.dfm"
    garbage.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        OnnxSwapper.load(garbage, "cpu")
    class ThreeOutputs(torch.nn.Module):  # DeepFaceLive's names, but not a face in sight
        def forward(self, x):
            return x * 1, x * 2, x * 3

    other = tmp_path / "other.dfm"
    torch.onnx.export(ThreeOutputs(), (torch.zeros(1, 3),), str(other), input_names=["in_face:0"], dynamo=False)
    with pytest.raises(ModelError, match=r"face tensor shape .* is not \(N, R, R, C\)"):
        OnnxSwapper.load(other, "cpu")
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 3), (torch.zeros(1, 3),), str(plain), input_names=["x"], dynamo=False)
    with pytest.raises(ModelError, match="not a face-swap model"):
        OnnxSwapper.load(plain, "cpu")


def test_load_swapper_takes_a_model_folder_or_an_exported_file(sae):
    assert isinstance(load_swapper(sae.model_dir, None, "cpu"), Swapper)
    assert isinstance(load_swapper(sae.dfm, "SAE", "cpu"), OnnxSwapper)
    with pytest.raises(ModelError, match="holds the SAE model, not DF"):
        load_swapper(sae.dfm, "DF", "cpu")


def test_providers_follow_the_device():
    import torch

    assert providers_for("cpu") == ["CPUExecutionProvider"]
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            providers_for("cuda")
