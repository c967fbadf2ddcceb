"""The training models: every registered model builds, learns real faces, swaps; options are checked."""

from __future__ import annotations

import math

import pytest
import torch

from facelab.errors import OptionError
from facelab.options import validate
from facelab.train import bench
from facelab.train.blocks import ca_kernels
from facelab.train.models import MODELS
from facelab.train.models.build import option_specs
from facelab.train.precision import amp_dtype, autocast_context

from ..conftest import TINY_MODELS

# The DFL 1 models and SAE (SAEHD and Quick96 have their own test files).
TINY = {name: TINY_MODELS[name] for name in ("H64", "H128", "DF", "LIAEF128", "SAE")}


def build(name: str, **options):
    torch.manual_seed(0)
    cls = MODELS.get(name)
    return cls(validate(cls.option_specs, {**TINY[name], **options}))


@pytest.fixture(scope="module")
def faces(src_video, dst_video):
    """faces(resolution, face_type, n) → (src, dst), each (images (n,3,R,R), masks (n,1,R,R)), real aligned faces."""
    cache = {}

    def get(resolution: int, face_type: str, n: int = 2):
        key = (resolution, face_type)
        if key not in cache:
            cache[key] = tuple(bench.to_batch_tensors(*bench.demo_faces(video, 3, resolution, face_type))
                               for video in (src_video, dst_video))
        return tuple((images[:n], masks[:n]) for images, masks in cache[key])

    return get


def batch_for(model, faces, n: int = 2) -> dict[str, torch.Tensor]:
    src, dst = faces(model.resolution, model.face_type, n)
    return bench.training_batch(src, dst, torch.arange(n))


def test_registry_holds_the_seed_models():
    assert sorted(MODELS.names()) == ["DF", "H128", "H64", "LIAEF128", "Quick96", "SAE", "SAEHD"]
    with pytest.raises(OptionError, match="did you mean 'SAE'"):
        MODELS.get("SEA")


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_learns_real_faces(name, faces):
    """A few Adam steps (bf16 autocast where the CPU is fast at it) on real faces make the loss fall."""
    model = build(name)
    batch = batch_for(model, faces, n=1 if model.resolution > 64 else 2)
    _, totals = bench.train_steps(model, [batch] * 8, amp="auto", lr=3e-4, swap=False)
    assert all(math.isfinite(t) for t in totals)
    assert sum(totals[-3:]) / 3 < 0.9 * sum(totals[:3]) / 3, totals


@pytest.mark.parametrize("name", sorted(TINY))
def test_training_outputs_and_swap_api(name, faces):
    model = build(name)
    batch = batch_for(model, faces, n=1)
    r = model.resolution
    out = model.forward_train(batch["src"], batch["dst"])
    for key in ("src_src", "dst_dst", "dst_src"):
        assert out[key].shape == (1, 3, r, r)
        assert 0 <= out[key].min() and out[key].max() <= 1
    for key in ("src_src_mask", "dst_dst_mask", "dst_src_mask"):
        assert out[key].shape == (1, 1, r, r)
    assert not out["dst_src"].requires_grad  # no style loss: the swap pass costs no backward

    losses = model.loss(batch, out)
    assert {"src", "dst", "total"} <= set(losses)
    assert all(v.ndim == 0 for v in losses.values())
    assert torch.allclose(losses["total"], losses["src"] + losses["dst"])

    face, src_mask, dst_mask = model.swap(batch["dst"])
    assert model.training  # swap restores the mode it found
    assert face.shape == (1, 3, r, r) and face.dtype == torch.float32 and not face.requires_grad
    assert 0 <= face.min() and face.max() <= 1
    assert src_mask.shape == dst_mask.shape == (1, 1, r, r)
    assert 0 <= dst_mask.min() and dst_mask.max() <= 1
    assert model.face_type in ("half", "full")


def test_sae_without_mask_predicts_none(faces):
    model = build("SAE", learn_mask=False, archi="liae")
    batch = batch_for(model, faces)
    out = model.forward_train(batch["src"], batch["dst"])
    assert not any(k.endswith("_mask") for k in out)
    face, src_mask, dst_mask = model.swap(batch["dst"])
    assert face.shape == (2, 3, 64, 64) and src_mask is None and dst_mask is None


def test_sae_every_switch_trains(faces):
    """liae + multiscale + CA init + style powers + gray border + pixel loss: builds, learns, and the style
    losses act only on the src side (they train the dst→src prediction)."""
    options = dict(archi="liae", multiscale_decoder=True, ca_init=True, remove_gray_border=True, pixel_loss=True)
    plain, styled = build("SAE", **options), build("SAE", **options, face_style_power=50.0, bg_style_power=50.0)
    batch = batch_for(plain, faces)
    out = plain.forward_train(batch["src"], batch["dst"])
    assert out["src_src@16"].shape == (2, 3, 16, 16) and out["dst_dst@32"].shape == (2, 3, 32, 32)
    a, b = plain.loss(batch, out), styled.loss(batch, styled.forward_train(batch["src"], batch["dst"]))
    assert torch.allclose(a["dst"], b["dst"]) and b["src"] > a["src"]
    _, totals = bench.train_steps(styled, [batch] * 5, lr=3e-4)
    assert totals[-1] < totals[0], totals


def test_activation_checkpointing_gives_the_same_gradients(faces):
    model = build("SAE")
    batch = batch_for(model, faces)
    grads = []
    for on in (False, True):
        model.use_checkpointing = on
        model.loss(batch, model.forward_train(batch["src"], batch["dst"], swap=False))["total"].backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        model.zero_grad()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_flops_scale_with_batch():
    model = build("SAE")
    per_face = model.flops_per_iteration(1)
    assert model.flops_per_iteration(8) == pytest.approx(8 * per_face)
    # More than the 2 × parameters × 3 (forward + backward) of one pass through every weight.
    assert per_face > 6 * sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("option, value, expected", [
    ("resolution", 512, "64 to 256"),
    ("ae_dims", 64, "128 to 1024"),
    ("e_ch_dims", 90, "21 to 85"),
    ("d_ch_dims", 10, "11 to 85"),
    ("face_style_power", 101, "0 to 100"),
    ("bg_style_power", -1, "0 to 100"),
    ("optimizer_mode", 4, "one of 1, 2, 3"),
    ("archi", "vg", "one of df, liae"),
    ("face_type", "head", "one of half, full"),
])
def test_out_of_range_options_are_refused_with_the_range(option, value, expected):
    with pytest.raises(OptionError, match=expected):
        validate(option_specs("SAE"), {option: value})


def test_resolution_must_be_a_multiple_of_16():
    with pytest.raises(OptionError, match="multiple of 16"):
        build("SAE", resolution=72)


def test_architecture_options_are_fixed_and_loss_options_are_not():
    specs = {o.name: o for o in option_specs("SAE")}
    assert all(specs[n].fixed for n in ("resolution", "face_type", "archi", "ae_dims", "e_ch_dims", "d_ch_dims",
                                        "learn_mask", "multiscale_decoder", "ca_init"))
    assert not any(specs[n].fixed for n in ("face_style_power", "bg_style_power", "pixel_loss", "optimizer_mode"))
    assert all(o.fixed for o in MODELS.get("H64").option_specs)


def test_amp_modes():
    assert amp_dtype("cpu", "off") is None
    assert amp_dtype("cpu", "bf16") is torch.bfloat16
    with pytest.raises(OptionError, match="CUDA only"):
        amp_dtype("cpu", "fp16")
    with pytest.raises(OptionError, match="one of auto, off"):
        amp_dtype("cpu", "fp8")
    model = build("SAE")
    x = torch.rand(1, 3, 64, 64)
    with autocast_context("cpu", "bf16"):
        out = model.forward_train(x, x, swap=False)
    assert out["src_src"].dtype == torch.bfloat16
    batch = {"src_target": x, "dst_target": x, "src_mask": torch.ones(1, 1, 64, 64),
             "dst_mask": torch.ones(1, 1, 64, 64)}
    with autocast_context("cpu", "bf16"):
        assert model.loss(batch, out)["total"].dtype == torch.float32  # losses stay in float32


def test_ca_kernels_are_orthogonal_per_filter_with_he_variance():
    torch.manual_seed(0)
    w = ca_kernels(64, 9, 3, eps_std=0.0)  # 9 kernels of 3×3: one full orthogonal group per filter
    assert w.shape == (64, 9, 3, 3) and w.dtype == torch.float32
    assert w.std().item() == pytest.approx(math.sqrt(2 / (9 * 9)), rel=1e-3)
    k = w.flatten(2)
    gram = k @ k.transpose(1, 2)
    off_diagonal = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    assert off_diagonal.abs().max() < 1e-5 * gram.abs().max()
    noisy = ca_kernels(64, 9, 3).flatten(2)  # the default noise keeps them nearly orthogonal
    cos = torch.nn.functional.normalize(noisy, dim=2) @ torch.nn.functional.normalize(noisy, dim=2).transpose(1, 2)
    assert (cos - torch.eye(9)).abs().max() < 0.3


def test_sae_feeds_unwarped_faces_when_random_warp_is_off(caches):
    """SAE takes DeepFaceLab 2's late-training switch: random warp off (the saved option is not fixed)."""
    import numpy as np

    from facelab.train import samples

    run = validate(option_specs("SAE"), {**TINY["SAE"], "random_flip": False})
    assert build("SAE").feed_settings(run).random_warp is True
    assert not {o.name: o for o in option_specs("SAE")}["random_warp"].fixed
    feed = build("SAE", random_warp=False).feed_settings(run)
    batch = samples.make_batch(*caches, feed, np.random.default_rng(0))
    for side in ("src", "dst"):
        np.testing.assert_array_equal(batch[side], batch[f"{side}_target"])
