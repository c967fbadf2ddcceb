"""The swap API merge uses: load a trained model, predict src faces and masks for aligned dst faces."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facelab.errors import ModelError
from facelab.options import validate
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles, TrainState
from facelab.train.samples import FaceCache
from facelab.train.swap import Swapper
from facelab.train.models.build import build_model, option_specs


@pytest.fixture(scope="module")
def dst_faces(dst_faceset) -> np.ndarray:
    cache = FaceCache.build(dst_faceset, "full", 64)
    try:
        return np.array(cache.faces[:5])
    finally:
        cache.close()


def test_swapper_predicts_faces_and_masks_in_range(trained_sae, dst_faces):
    swapper = Swapper.load(trained_sae[0], device="cpu")  # the only model in the folder
    assert (swapper.resolution, swapper.face_type, swapper.learn_mask) == (64, "full", True)
    assert swapper.iteration == trained_sae[1].iteration
    face, src_mask, dst_mask = swapper.predict(dst_faces)
    assert face.shape == (5, 64, 64, 3) and face.dtype == np.float32
    assert src_mask.shape == dst_mask.shape == (5, 64, 64) and src_mask.dtype == np.float32
    for arr in (face, src_mask, dst_mask):
        assert np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1
    assert face.std() > 0.01  # a picture, not a constant
    # batching does not change the answer
    swapper.batch_size = 2
    again = swapper.predict(dst_faces)
    np.testing.assert_allclose(again[0], face, atol=1e-5)
    np.testing.assert_allclose(again[2], dst_mask, atol=1e-5)
    empty = swapper.predict(np.zeros((0, 64, 64, 3), np.uint8))
    assert empty[0].shape == (0, 64, 64, 3) and empty[1].shape == (0, 64, 64)


def test_swapper_refuses_faces_of_the_wrong_size(trained_sae, dst_faces):
    swapper = Swapper.load(trained_sae[0], "SAE", device="cpu")
    with pytest.raises(ModelError, match=r"must be \(N, 64, 64, 3\) uint8"):
        swapper.predict(np.zeros((2, 128, 128, 3), np.uint8))
    with pytest.raises(ModelError, match="uint8"):
        swapper.predict(dst_faces.astype(np.float32))


def _save_untrained(folder, name: str, **given) -> None:
    opts = validate(option_specs(name), given)
    checkpoint.save(ModelFiles(folder, name), build_model(name, opts), None, opts, TrainState())


def test_model_without_mask_gives_no_masks(tmp_path, dst_faces):
    _save_untrained(tmp_path, "SAE", resolution=64, ae_dims=128, e_ch_dims=21, d_ch_dims=11, learn_mask=False)
    face, src_mask, dst_mask = Swapper.load(tmp_path, device="cpu").predict(dst_faces[:2])
    assert face.shape == (2, 64, 64, 3) and src_mask is None and dst_mask is None


def test_which_model_to_load(trained_sae, tmp_path):
    with pytest.raises(ModelError, match="no trained model in this folder"):
        Swapper.load(tmp_path, device="cpu")
    with pytest.raises(ModelError, match="no DF model in this folder"):
        Swapper.load(trained_sae[0], "DF", device="cpu")
    both = shutil.copytree(trained_sae[0], tmp_path / "both")
    _save_untrained(both, "H64", lightweight=True)
    with pytest.raises(ModelError, match=r"several models \(H64, SAE\).*--model"):
        Swapper.load(both, device="cpu")
    assert Swapper.load(both, "H64", device="cpu").face_type == "half"
