"""The seed's "Which GPU idx to choose?": a model trained on a GPU picked by index names its files after it
(``1_SAE_...``), so one folder holds a model per GPU; the default choice names them as before. Training and
merging find the right files either way. The GPU choice is given explicitly here: no GPU is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facelab.device import chosen_gpu_index
from facelab.errors import DeviceError, ModelError
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.train.swap import Swapper
from facelab.train.trainer import train_model

from .conftest import TINY_SAE, TRAINED_ITERATIONS


def test_only_a_gpu_picked_by_index_prefixes_the_names():
    assert [chosen_gpu_index(s) for s in ("cuda:1", " CUDA:0 ", "cuda:12")] == [1, 0, 12]
    assert [chosen_gpu_index(s) for s in ("auto", "cpu", "cuda", "all", "", None)] == [None] * 6
    for bad in ("cuda:-1", "cuda:x"):
        with pytest.raises(DeviceError, match="unknown device"):
            chosen_gpu_index(bad)
    assert checkpoint.saved_name("SAE", 1) == "1_SAE" and checkpoint.saved_name("SAEHD", None) == "SAEHD"
    assert checkpoint.saved_name("H64", 0) == "0_H64"
    for name, parsed in (("1_SAE", ("SAE", 1)), ("0_H64", ("H64", 0)), ("SAE", ("SAE", None)),
                         ("LIAEF128", ("LIAEF128", None)), ("12_Quick96", ("Quick96", 12))):
        assert checkpoint.parse_saved_name(name) == parsed


def _files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_model_trained_on_gpu_1_has_prefixed_files_that_merge_finds(tmp_path, src_faceset, dst_faceset):
    result = train_model(tmp_path, src_faceset, dst_faceset, "SAE", dict(TINY_SAE), max_iterations=1,
                         device="cpu", seed=0, gpu_index=1)
    assert result.iteration == 1
    names = _files_in(tmp_path)
    assert "1_SAE_save_000002/1_SAE_weights.safetensors" in names and "1_SAE_preview.png" in names
    assert all(n.startswith("1_SAE_") for n in names), names  # nothing named as an unprefixed SAE
    assert checkpoint.find_models(tmp_path) == ["1_SAE"]
    for asked in (None, "SAE", "1_SAE"):  # the only model, its model name, its saved name
        swapper = Swapper.load(tmp_path, asked, device="cpu")
        assert (swapper.name, swapper.iteration, swapper.resolution) == ("1_SAE", 1, 64)
    with pytest.raises(ModelError, match=r"no 2_SAE model in this folder \(it holds 1_SAE\)"):
        Swapper.load(tmp_path, "2_SAE", device="cpu")


def test_default_and_gpu_1_models_side_by_side(trained_sae, tmp_path, src_faceset, dst_faceset, run_cli,
                                               monkeypatch):
    model_dir = Path(shutil.copytree(trained_sae[0], tmp_path / "model"))
    default_files = ModelFiles(model_dir, "SAE")
    before = {p.name: p.read_bytes() for p in default_files.all()}
    # The user picks GPU 1 (`--device cuda:1`); this machine trains it on the CPU.
    monkeypatch.setattr("facelab.cli.train.chosen_gpu_index", lambda spec: 1)
    tiny = [f for k, v in TINY_SAE.items() for f in (f"--{k.replace('_', '-')}", str(v))]
    run = run_cli("train", "--model-dir", str(model_dir), "--src-aligned", str(src_faceset), "--dst-aligned",
                  str(dst_faceset), "--device", "cpu", "--yes", "--iterations", "1", *tiny)
    assert run.code == 0, run.err
    assert "Saved 1_SAE at iteration 1" in run.out  # a new model: the SAE already there is another GPU's
    assert checkpoint.find_models(model_dir) == ["1_SAE", "SAE"]
    assert {p.name: p.read_bytes() for p in default_files.all()} == before  # the default model is untouched
    assert ModelFiles(model_dir, "1_SAE").saved.name == "1_SAE_save_000002"

    # merge: asks which one when given none; takes either name
    with pytest.raises(ModelError, match=r"several models \(1_SAE, SAE\) in this folder.*--model"):
        Swapper.load(model_dir, device="cpu")
    assert Swapper.load(model_dir, "SAE", device="cpu").iteration == TRAINED_ITERATIONS
    assert Swapper.load(model_dir, "1_SAE", device="cpu").iteration == 1

    # training again on GPU 1 resumes that model; the default choice resumes the other
    assert train_model(model_dir, src_faceset, dst_faceset, "SAE", {}, max_iterations=1, device="cpu",
                       gpu_index=1).iteration == 2
    assert checkpoint.load_state(ModelFiles(model_dir, "SAE"), None).iteration == TRAINED_ITERATIONS
    assert train_model(model_dir, src_faceset, dst_faceset, "SAE", {}, max_iterations=1,
                       device="cpu").iteration == TRAINED_ITERATIONS + 1
    assert checkpoint.load_state(ModelFiles(model_dir, "1_SAE"), None).iteration == 2
