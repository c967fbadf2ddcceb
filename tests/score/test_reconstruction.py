"""Reconstruction SSIM: faces re-cut for the model, SSIM itself, and a model that learned the faces scores higher
than the same model untrained — through the library and through `score_workspace`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.geometry.alignment import face_from_landmarks, warp_face
from facelab.io.faceimage import list_faces, read_face
from facelab.options import validate
from facelab.score.reconstruction import model_faces, reconstruct, ssim_images
from facelab.score.runner import score_workspace
from facelab.train import bench, checkpoint
from facelab.train.models import MODELS
from facelab.train.models.build import option_specs

SMALL_SAE = {"archi": "df", "resolution": 64, "face_type": "full", "ae_dims": 128, "e_ch_dims": 21, "d_ch_dims": 11,
             "mask_dims": 16, "learn_mask": False}


@pytest.fixture(scope="module")
def faces(tiny):
    loaded = {side: [read_face(p) for p in list_faces(tiny.ws.aligned(side))] for side in ("src", "dst")}
    return {side: ([f[0] for f in pairs], [f[1] for f in pairs]) for side, pairs in loaded.items()}


def test_model_faces_at_the_files_own_type_and_size_are_the_files(faces):
    images, metas = faces["dst"]
    out = model_faces(images, metas, metas[0].face_type, metas[0].image_size)
    assert out.shape == (len(images), *images[0].shape) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.stack(images)).max() <= 1


def test_model_faces_match_a_cut_from_the_frame(tiny, faces):
    import cv2

    images, metas = faces["dst"]
    frame = cv2.imread(str(tiny.ws.frames("dst") / metas[0].source_filename))
    direct = warp_face(frame, face_from_landmarks(metas[0].source_landmarks, "half", 64), 64)
    recut = model_faces(images[:1], metas[:1], "half", 64)[0]  # from the 128 px full-face file, not the frame
    assert np.abs(recut.astype(float) - direct).mean() < 6


def test_ssim_images(faces):
    man = np.stack(faces["dst"][0][:2])
    woman = np.stack(faces["src"][0][:2])
    assert ssim_images(man, man) == pytest.approx([1.0, 1.0])
    assert ssim_images(man, woman).max() < 0.7
    assert 0.5 < ssim_images(man[:1], man[1:2])[0] < 1.0  # the same man a frame later


@pytest.fixture
def one_thread():
    """The tiny net trains ~6x faster on one thread than on two of a busy 2-core machine (no oversubscription)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trained(faces, steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    sae = MODELS.get("SAE")
    model = sae(validate(sae.option_specs, SMALL_SAE))
    src, dst = (bench.to_batch_tensors(model_faces(*faces[s], "full", 64), np.ones((3, 64, 64), np.float32))
                for s in ("src", "dst"))
    batch = bench.training_batch(src, dst, torch.arange(3))
    if steps:
        bench.train_steps(model, [batch] * steps, lr=1e-3, swap=False)
    return model


def test_learned_faces_reconstruct_better(tiny, faces, tmp_path, one_thread):
    cut = {s: model_faces(*faces[s], "full", 64) for s in ("src", "dst")}
    untrained = _trained(faces, 0)
    before = ssim_images(cut["src"], reconstruct(untrained, cut["src"], "src", torch.device("cpu"))).mean()
    model = _trained(faces, 8)
    model.train()
    after_src = reconstruct(model, cut["src"], "src", torch.device("cpu"))
    assert model.training  # the mode is restored
    assert after_src.shape == cut["src"].shape and after_src.dtype == np.uint8
    after = ssim_images(cut["src"], after_src).mean()
    assert after > before + 0.1

    ws = tiny.copy_to(tmp_path / "ws")
    options = validate(option_specs("SAE"), SMALL_SAE)
    checkpoint.save(checkpoint.ModelFiles(ws.model, "SAE"), model, None, options, checkpoint.TrainState(iteration=8))
    result = score_workspace(ws.root, device="cpu", identity_faces=1, worst_frames=0, reconstruction_faces=3,
                             holdout_dst=ws.aligned("dst"))
    rec = result.summary["reconstruction"]
    assert rec["model"] == "SAE" and rec["iteration"] == 8
    assert rec["src"]["ssim"] == pytest.approx(after, abs=0.02) and rec["src"]["held_out"] is False
    assert rec["dst"]["held_out"] is True and 0 < rec["dst"]["ssim"] < 1
