"""`facelab export`: every model's graph in ONNX Runtime computes what PyTorch computes on real faces; the .dfm
is exactly DeepFaceLive's layout; the file is labelled; broken model folders and existing files are refused."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from facelab import provenance
from facelab.errors import OptionError, OutputError
from facelab.export import check as check_module
from facelab.export.check import TOLERANCE, CheckFaces, ExportMismatch, compare, max_abs_difference
from facelab.export.exporter import export_model
from facelab.export.runtime import OnnxSwapper
from facelab.train.models import MODELS
from facelab.train.swap import Swapper

DFL_OUTPUTS = ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_exports_and_onnxruntime_matches_pytorch_on_real_faces(name, trained, dst_faces_of):
    model = trained(name)
    onnx = OnnxSwapper.load(model.dfm, device="cpu")
    torch_swapper = Swapper.load(model.model_dir, device="cpu")
    assert (onnx.name, onnx.face_type, onnx.resolution, onnx.learn_mask, onnx.iteration) == (
        torch_swapper.name, torch_swapper.face_type, torch_swapper.resolution, torch_swapper.learn_mask, 1)
    faces = dst_faces_of(onnx.face_type, onnx.resolution, 2)
    assert len(faces) == 2
    report = compare(onnx, torch_swapper, CheckFaces(faces, "dst faces"))  # what --check runs
    assert report.max_abs <= TOLERANCE and set(report.differences) == {"face", "face mask", "dst mask"}
    got = onnx.predict(faces)
    assert [(a.shape, a.dtype) for a in got] == [((2, onnx.resolution, onnx.resolution, 3), np.float32)] + [
        ((2, onnx.resolution, onnx.resolution), np.float32)] * 2
    assert got[0].std() > 0.01  # a picture, not a constant


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name, morph", [("SAEHD", True), ("H64", False)])
def test_dfm_has_exactly_deepfacelives_inputs_and_outputs(name, morph, trained, dst_faces_of):
    model = trained(name)
    session = _session(model.dfm)
    swapper = Swapper.load(model.model_dir, device="cpu")
    r = swapper.resolution
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [(i.name, i.type) for i in inputs] == [("in_face:0", "tensor(float)")] + (
        [("morph_value:0", "tensor(float)")] if morph else [])
    assert inputs[0].shape[1:] == [r, r, 3] and isinstance(inputs[0].shape[0], str)  # dynamic batch
    if morph:
        assert inputs[1].shape == [1]
    assert [o.name for o in outputs] == DFL_OUTPUTS
    assert [o.shape[1:] for o in outputs] == [[r, r, 1], [r, r, 3], [r, r, 1]]
    assert all(o.type == "tensor(float)" for o in outputs)
    # Run it as DeepFaceLive does: BGR float32 in 0..1, feed by name, unpack by position, morph factor 0.75.
    faces = dst_faces_of(swapper.face_type, r).astype(np.float32) / 255
    for batch in (faces[:1], faces[:3]):
        feed = {"in_face:0": batch, **({"morph_value:0": np.float32([0.75])} if morph else {})}
        face_mask, celeb, celeb_mask = session.run(None, feed)
        assert celeb.shape == (len(batch), r, r, 3) and face_mask.shape == celeb_mask.shape == (len(batch), r, r, 1)
        for out in (face_mask, celeb, celeb_mask):
            assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_morph_value_goes_from_the_dst_face_redrawn_to_the_swap(trained, dst_faces_of):
    model = trained("SAEHD")  # liae-ud
    session = _session(model.dfm)
    net = Swapper.load(model.model_dir, device="cpu").model.net
    faces = dst_faces_of("full", 64)
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        c_swap, c_dst = net.swap_codes(x)
        swap, redrawn = (net.decode_swap(c)[0][-1].clamp(0, 1).permute(0, 2, 3, 1).numpy() for c in (c_swap, c_dst))
    feed = {"in_face:0": faces.astype(np.float32) / 255}
    at = {m: session.run(["out_celeb_face:0"], {**feed, "morph_value:0": np.float32([m])})[0] for m in (0, 0.5, 1)}
    assert max_abs_difference(at[1], swap) <= TOLERANCE
    assert max_abs_difference(at[0], redrawn) <= TOLERANCE
    assert max_abs_difference(at[0], at[1]) > 10 * TOLERANCE  # the two ends differ, so the test can tell


def test_onnx_format_uses_plain_names_and_leaves_out_masks_a_model_does_not_learn(tmp_path, train, facesets,
                                                                                   dst_faces_of):
    train(tmp_path, "SAE", learn_mask=False)
    for fmt, outputs in (("onnx", ["swapped_face"]), ("dfm", DFL_OUTPUTS)):
        result = export_model(tmp_path, None, fmt, check=True, check_aligned=facesets[1])
        assert result.path == tmp_path / f"SAE.{fmt}" and result.check.max_abs <= TOLERANCE
        session = _session(result.path)
        assert [i.name for i in session.get_inputs()] == (["dst_face"] if fmt == "onnx" else ["in_face:0"])
        assert [o.name for o in session.get_outputs()] == outputs
        face, swap_mask, dst_mask = OnnxSwapper.load(result.path, "cpu").predict(dst_faces_of("full", 64))
        assert face.shape[1:] == (64, 64, 3) and swap_mask is None and dst_mask is None
    ones = _session(tmp_path / "SAE.dfm").run(None, {"in_face:0": np.zeros((1, 64, 64, 3), np.float32)})
    assert ones[0].min() == ones[2].min() == 1  # DeepFaceLive needs masks: a model without one gives ones


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.onnx.export of the stand-in graphs
def test_the_file_is_labelled_and_verify_recognises_it(trained, run_cli):
    model = trained("SAE")
    label = provenance.read_label(model.dfm)
    assert label["synthetic"] is True and label["tool"] == "facelab"
    assert (label["model"], label["face_type"], label["resolution"], label["iteration"]) == ("SAE", "full", 64, 1)
    result = run_cli("verify", str(model.dfm))
    assert result.code == 0 and "SYNTHETIC" in result.out and "not applicable" in result.out, result
    plain = model.dfm.with_name("plain.onnx")
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(plain), dynamo=False)
    result = run_cli("verify", str(plain))
    assert result.code == 1 and "no facelab label found" in result.out, result
    garbage = plain.with_name("garbage.dfm")
    garbage.write_bytes(b"\x08\x96" * 500)
    result = run_cli("verify", str(garbage))
    assert result.code == 2 and "cannot read this ONNX model" in result.err, result


def _break(folder, how: str) -> None:
    saved = sorted(folder.glob("SAE_save_*"))[-1]  # the last complete save: the one a load reads
    weights, options = saved / "SAE_weights.safetensors", saved / "SAE_options.json"
    if how == "missing weights":
        weights.unlink()
    elif how == "short weights":
        weights.write_bytes(weights.read_bytes()[:5000])
    elif how == "bad JSON":
        options.write_text('{"format": 1, "options": {"resolution": 6')
    elif how == "not trained yet":  # killed before its first save: only a temp folder of it is there
        for save in folder.glob("SAE_save_*"):
            save.rename(folder / f".{save.name}.1234.tmp")


@pytest.mark.parametrize("how, message", [("missing weights", "SAE_weights.safetensors: file is missing"),
                                          ("short weights", "file is truncated or corrupt"),
                                          ("bad JSON", "SAE_options.json: corrupt JSON"),
                                          ("not trained yet", "no trained model in this folder")])
def test_a_corrupt_or_half_trained_model_folder_gives_one_clear_line(how, message, trained, tmp_path, run_cli):
    folder = shutil.copytree(trained("SAE").model_dir, tmp_path / "model")
    (folder / "SAE.dfm").unlink()
    _break(folder, how)
    result = run_cli("export", "--model-dir", str(folder), "--format", "dfm", "--yes")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result
    assert "Traceback" not in result.err and not (folder / "SAE.dfm").exists()


def test_an_existing_file_is_replaced_only_with_yes(trained, tmp_path, run_cli):
    model = trained("H64")
    out = tmp_path / "h64.dfm"
    out.write_bytes(b"keep me")
    args = ["export", "--model-dir", str(model.model_dir), "--format", "dfm", "--output", str(out)]
    refused = run_cli(*args)  # no terminal, no --yes: nothing to confirm with
    assert refused.code == 2 and "already exists" in refused.err and out.read_bytes() == b"keep me", refused
    done = run_cli(*args, "--yes", "--check", "--opset", "12")
    assert done.code == 0 and "max abs difference" in done.out and str(out) in done.out, done
    assert OnnxSwapper.load(out, "cpu").name == "H64"
    assert [p.name for p in tmp_path.iterdir()] == ["h64.dfm"]  # no temp file left beside it


def test_check_fails_with_a_typed_error_and_leaves_no_file(trained, tmp_path, monkeypatch, facesets, dst_faces_of):
    model = trained("SAE")
    onnx = OnnxSwapper.load(model.dfm, "cpu")
    other = Swapper.load(model.model_dir, device="cpu")
    with torch.no_grad():
        next(other.model.net.decoder_src.parameters()).add_(0.5)  # a model the file was not exported from
    faces = check_module.check_faces(facesets[1], "full", 64)
    with pytest.raises(ExportMismatch, match=r"differs from the PyTorch model by .* \(tolerance 0.002\)"):
        compare(onnx, other, faces)
    monkeypatch.setattr(check_module, "TOLERANCE", -1.0)  # no export can pass: the write must not happen
    with pytest.raises(ExportMismatch):
        export_model(model.model_dir, None, "onnx", tmp_path / "out.onnx", check=True, check_aligned=facesets[1])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="already exists"):
        export_model(model.model_dir, None, "dfm")
    with pytest.raises(OptionError, match="must be a .dfm or .onnx file"):
        export_model(model.model_dir, None, "dfm", tmp_path / "model.bin")


def test_check_falls_back_to_the_packaged_photos_without_dst_faces(tmp_path):
    faces = check_module.check_faces(tmp_path / "no such folder", "half", 64)
    assert faces.faces.shape[1:] == (64, 64, 3) and len(faces.faces) >= 3 and "packaged" in faces.source
