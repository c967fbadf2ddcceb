"""SAEHD: every archi variant and face type builds and swaps, it learns real faces, its options are checked, the
GAN and true-face discriminators add their loss terms, eyes-and-mouth priority weighs exactly those regions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from facelab.errors import OptionError
from facelab.options import validate
from facelab.train import samples
from facelab.train.discriminators import PatchDiscriminator, patch_layers, receptive_field
from facelab.train.models import MODELS
from facelab.train.models.saehd import SAEHD, blur_out_background
from facelab.train.models.saehd_nets import ARCHI_CHOICES, parse_archi
from facelab.train.optimizers import AdaBelief
from facelab.train.bench import StepRunner
from facelab.train.checkpoint import ModelFiles
from facelab.train.loop import to_tensors
from facelab.train.samples import FaceCache
from facelab.train.swap import Swapper
from facelab.train.trainer import train_model
from facelab.types import FaceType


# The smallest SAEHD at 64 px: every width at its minimum (and a small GAN), so a CPU runs it in well under a second.
TINY = {"resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "mask_dims": 16, "gan_dims": 4,
        "gan_patch_size": 8}


def build(**options) -> SAEHD:
    torch.manual_seed(0)
    return SAEHD(validate(SAEHD.option_specs, {**TINY, **options}))


def real_batch(caches, n: int = 2, seed: int = 0, **settings) -> dict[str, torch.Tensor]:
    """A SAEHD batch of real demo faces (with eye/mouth masks) as float tensors in [0, 1], NCHW."""
    feed = samples.FeedSettings(batch_size=n, eyes_mouth=True, **settings)
    return to_tensors(samples.make_batch(*caches, feed, np.random.default_rng(seed)), torch.device("cpu"),
                      torch.contiguous_format)


@pytest.mark.parametrize("archi", ARCHI_CHOICES)
def test_every_archi_variant_builds_and_swaps(archi, caches):
    model = build(archi=archi)
    batch = real_batch(caches, n=1)
    with torch.no_grad():
        out = model.forward_train(batch["src"], batch["dst"])
        losses = model.loss(batch, out)
    for key in ("src_src", "dst_dst", "dst_src"):
        assert out[key].shape == (1, 3, 64, 64) and 0 <= out[key].min() and out[key].max() <= 1
    for key in ("src_src_mask", "dst_dst_mask", "dst_src_mask"):
        assert out[key].shape == (1, 1, 64, 64)
    assert torch.allclose(losses["total"], losses["src"] + losses["dst"]) and math.isfinite(float(losses["total"]))
    face, src_mask, dst_mask = model.swap(batch["dst"])
    assert face.shape == (1, 3, 64, 64) and src_mask.shape == dst_mask.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("archi", ["df-udt", "liae-udt"])
def test_every_layer_of_the_variants_learns(archi, caches):
    model = build(archi=archi)
    batch = real_batch(caches, n=1)
    model.loss(batch, model.forward_train(batch["src"], batch["dst"], swap=False))["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net.parameters())


def test_archi_letters_change_the_networks():
    base, double, deep = build(archi="df"), build(archi="df-d"), build(archi="df-t")
    # -d: the same decoder stages run at half the side; the dense code's grid is half as wide
    assert double.spec.code_res == base.spec.code_res // 2
    assert len(deep.net.decoder_src.image.ups) == len(base.net.decoder_src.image.ups) + 1
    assert parse_archi("liae-udt") == ("liae", frozenset("udt"))
    normed = build(archi="liae-u").net.encoder(torch.rand(2, 3, 64, 64))
    assert torch.allclose(normed.square().mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-3)  # -u: unit RMS code input


@pytest.mark.parametrize("face_type", [t.value for t in FaceType])
def test_every_face_type_trains_on_faces_cropped_for_it(face_type, src_faceset, dst_faceset):
    model = build(face_type=face_type)
    src = FaceCache.build(src_faceset, face_type, 64, eyes_mouth=True)
    dst = FaceCache.build(dst_faceset, face_type, 64, eyes_mouth=True)
    try:
        batch = real_batch((src, dst), n=1)
    finally:
        src.close()
        dst.close()
    assert model.face_type == face_type
    with torch.no_grad():
        assert math.isfinite(float(model.loss(batch, model.forward_train(batch["src"], batch["dst"]))["total"]))


def test_a_few_adabelief_steps_on_real_faces_lower_the_loss(caches):
    model = build(archi="liae-ud", eyes_mouth_prio=True)
    assert model.optimizer_name == "adabelief"
    runner = StepRunner(model, lr=3e-4, swap=False)  # with the model's own optimizer
    assert isinstance(runner.optimizer, AdaBelief)
    totals = runner.run([real_batch(caches, n=2)] * 6).losses
    assert sum(totals[-3:]) / 3 < 0.9 * sum(totals[:3]) / 3, totals


def test_the_double_resolution_decoder_starts_without_a_checkerboard(caches):
    """ICNR: every conv feeding a pixel shuffle starts with equal sub-pixel filters, so the untrained -d decoder
    draws each 2×2 block of the face in one colour instead of a fixed per-pixel noise texture (what the first
    hundreds of iterations used to spend unlearning, and the grid still seen in 64 px swaps)."""
    model = build(archi="df-ud")
    batch = real_batch(caches, n=2)
    with torch.no_grad():
        face = model.forward_train(batch["src"], batch["dst"], swap=False)["src_src"]
    blocks = F.interpolate(F.avg_pool2d(face, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(face, blocks, rtol=0, atol=1e-6)
    assert face.std(dim=(2, 3)).mean() > 0.01  # still a varied start, not a flat grey
    head = model.net.decoder_src.image.heads[0]
    assert torch.equal(head.weight[0], head.weight[3]) and not torch.equal(head.weight[0], head.weight[4])


def _learned_mask_error(caches, steps: int) -> tuple[float, float]:
    """A tiny df-ud trained ``steps`` AdaBelief steps on real faces: (MSE of its src mask on unwarped faces,
    MSE of the best constant mask there)."""
    model = build(archi="df-ud")
    opt = model.optimizer_factory("model")(model.param_groups(), 2e-4, "cpu")
    for step in range(steps):
        batch = real_batch(caches, n=4, seed=step)
        loss = model.loss(batch, model.forward_train(batch["src"], batch["dst"], swap=False))["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    faces = real_batch(caches, n=8, seed=999, random_warp=False, random_flip=False)
    with torch.no_grad():
        mask = model.forward_train(faces["src_target"], faces["dst_target"], swap=False)["src_src_mask"]
    target = faces["src_mask"]
    return float((mask - target).square().mean()), float(target.var(unbiased=False))


def test_a_short_training_on_real_faces_learns_the_mask_better_than_any_constant(caches):
    """The fault that kept saehd-cpu's held-out SSIM flat: the untrained pixel shuffles' checkerboard kept the
    -d decoders from forming even a blob, and 20 steps left the mask at a flat 0.5 (error ≈ the constant's)."""
    error, constant = _learned_mask_error(caches, steps=20)
    assert error < 0.6 * constant, (error, constant)


@pytest.mark.parametrize("options, message", [
    ({"resolution": 48}, "64 to 640"),
    ({"resolution": 656}, "64 to 640"),
    ({"resolution": 80, "archi": "liae"}, None),  # a multiple of 16 is fine without -d
    ({"resolution": 80, "archi": "liae-ud"}, "not a multiple of 32"),
    ({"resolution": 72, "archi": "df"}, "not a multiple of 16"),
    ({"gan_power": 5.5}, "0 to 5"),
    ({"true_face_power": 1.5}, "0 to 1"),
    ({"random_hsv_power": 0.5}, "0 to 0.3"),
    ({"ae_dims": 16}, "32 to 1024"),
    ({"archi": "liae-x"}, "one of df, df-u"),
    ({"lr_dropout": "maybe"}, "one of n, y, cpu"),
    ({"ct_mode": "xyz"}, "rct"),
    ({"true_face_power": 0.1, "archi": "liae-ud"}, "df archi only"),
])
def test_options_out_of_range_are_refused_with_the_range(options, message):
    if message is None:
        assert build(**options).resolution == options["resolution"]
        return
    with pytest.raises(OptionError) as err:
        build(**options)
    assert message in str(err.value) + " " + str(getattr(err.value, "fix", ""))


def test_architecture_options_are_fixed_and_training_ones_are_not():
    fixed = {o.name for o in SAEHD.option_specs if o.fixed}
    assert {"resolution", "face_type", "archi", "ae_dims", "e_dims", "d_dims", "mask_dims", "gan_patch_size",
            "gan_dims"} == fixed
    assert all(o.prompt for o in SAEHD.option_specs) and all(o.help for o in SAEHD.option_specs)


def test_gan_and_true_face_add_positive_generator_terms(caches):
    batch = real_batch(caches)
    plain, adversarial = build(archi="df-ud"), build(archi="df-ud", gan_power=1.0, true_face_power=0.5)
    a = plain.loss(batch, plain.forward_train(batch["src"], batch["dst"]))
    out = adversarial.forward_train(batch["src"], batch["dst"])
    b = adversarial.loss(batch, out)
    assert "src_gan" not in a and "src_true_face" not in a
    assert list(plain.extra_parts()) == ["gan", "true_face"]  # declared, so they can be switched on later ...
    assert not any(part.active for part in plain.extra_parts().values())  # ... but not trained at power 0
    assert b["src_gan"] > 0 and b["src_true_face"] > 0
    # Same weights (same seed): the adversarial terms are all that differs, and on the src side only.
    assert torch.allclose(b["src"], a["src"] + b["src_gan"] + b["src_true_face"], rtol=1e-5)
    assert torch.allclose(b["dst"], a["dst"])
    parts = adversarial.extra_parts()
    assert list(parts) == ["gan", "true_face"] and all(part.active for part in parts.values())
    for name, part in parts.items():
        d_loss = part.loss(batch, out)
        assert d_loss.ndim == 0 and 0 < d_loss.item() < 5
        adversarial.zero_grad(set_to_none=True)
        d_loss.backward()
        assert all(p.grad is not None for p in part.module.parameters())
        assert all(p.grad is None for p in adversarial.net.parameters())  # a discriminator step trains itself only
    own = {id(p) for g in adversarial.param_groups() for p in g["params"]}
    assert own == {id(p) for p in adversarial.net.parameters()}


def test_pretraining_turns_the_discriminators_off():
    model = build(gan_power=1.0, pretrain_faceset="faces")
    assert model.gan_power == 0 and not model.extra_parts()["gan"].active
    assert list(build(archi="liae-ud").extra_parts()) == ["gan"]  # no code discriminator for liae
    opts = {"batch_size": 4, "sort_by_yaw": False, "src_scale_mod": 0}
    assert model.feed_settings(opts).uniform_yaw and not build().feed_settings(opts).uniform_yaw


def test_eyes_mouth_priority_weighs_exactly_the_eye_and_mouth_mask(caches):
    model = build(eyes_mouth_prio=True)
    batch = real_batch(caches)
    out = {k: v.detach() for k, v in model.forward_train(batch["src"], batch["dst"]).items()}
    em = batch["src_em_mask"]
    base = model.loss(batch, out)
    outside, inside = dict(out), dict(out)
    # The same change of the prediction, away from the target, once off the eye/mouth mask (where the plain loss
    # still sees it) ...
    away = 0.2 * torch.where(out["src_src"] >= batch["src_target"], 1.0, -1.0)
    outside["src_src"] = (out["src_src"] + away * (em == 0) * batch["src_mask"]).clamp(0, 1)
    # ... and once on it.
    inside["src_src"] = (out["src_src"] + away * (em > 0)).clamp(0, 1)
    plain_model = build(eyes_mouth_prio=False)
    gain = lambda o: float(model.loss(batch, o)["src"] - base["src"])
    plain_gain = lambda o: float(plain_model.loss(batch, o)["src"] - plain_model.loss(batch, out)["src"])
    assert abs(gain(outside) - plain_gain(outside)) < 1e-4  # no eye/mouth term off the mask
    assert gain(inside) - plain_gain(inside) > 1.0  # a heavy one on it



def test_flops_are_counted_for_every_feed_setting_and_eyes_mouth_costs_a_little():
    """The benchmark's FLOP count runs the model's loss on a dummy batch: it must carry what each loss reads
    (the eye/mouth term adds only element-wise work, which the counter leaves out)."""
    plain, prio = build().flops_per_iteration(2), build(eyes_mouth_prio=True).flops_per_iteration(2)
    assert plain > 1e8 and prio == pytest.approx(plain, rel=0.01)
    assert build(eyes_mouth_prio=True).feed_settings({"batch_size": 2, "sort_by_yaw": False,
                                                       "src_scale_mod": 0.0}).eyes_mouth
    assert not build().feed_settings({"batch_size": 2, "sort_by_yaw": False, "src_scale_mod": 0.0}).eyes_mouth

def test_masked_training_off_learns_the_background_too(caches):
    batch = real_batch(caches)
    masked, unmasked = build(), build(masked_training=False)
    out = {k: v.detach() for k, v in masked.forward_train(batch["src"], batch["dst"]).items()}
    background = dict(out)
    background["dst_dst"] = (out["dst_dst"] + 0.3 * (1 - samples_loss_weight(batch["dst_mask"]))).clamp(0, 1)
    assert torch.allclose(masked.loss(batch, background)["dst"], masked.loss(batch, out)["dst"], atol=1e-4)
    assert unmasked.loss(batch, background)["dst"] > unmasked.loss(batch, out)["dst"] + 0.02


def samples_loss_weight(mask: torch.Tensor) -> torch.Tensor:
    """Where masked training's loss weight is non-zero (the widened, blurred mask), as a 0/1 map."""
    from facelab.train import losses

    return (losses.loss_mask(mask, mask.shape[-1]) > 0).float()


def test_blur_out_background_keeps_the_face_and_smooths_the_rest(caches):
    batch = real_batch(caches)
    image, mask = batch["src_target"], (batch["src_mask"] > 0.5).float()
    out = blur_out_background(image, mask, 2.0)
    assert torch.equal(out * mask, image * mask)
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs()[(1 - mask[..., 1:]).bool().expand(-1, 3, -1, -1)].mean()
    assert detail(out) < 0.7 * detail(image)


def test_patch_discriminator_judges_patches_of_the_asked_size():
    assert receptive_field(3, 0) == 15 and receptive_field(3, 1) == 31
    for patch in (8, 16, 32, 64):
        downs, flat = patch_layers(patch, 128)
        assert abs(receptive_field(downs, flat) - patch) <= patch / 2
    d = PatchDiscriminator(16, 64, 8)
    patch_logits, pixel_logits = d(torch.rand(2, 3, 64, 64))
    downs, _ = patch_layers(16, 64)
    assert patch_logits.shape == (2, 1, 64 >> downs, 64 >> downs) and pixel_logits.shape == (2, 1, 64, 64)


def test_quick96_and_saehd_are_registered():
    assert MODELS.get("SAEHD") is SAEHD and issubclass(MODELS.get("Quick96"), SAEHD)


# -- training runs through the trainer ------------------------------------------------------------------------

RUN = {**TINY, "batch_size": 2, "workers": 0, "amp": "off", "learning_rate": 2e-4, "archi": "df-ud",
       "gan_power": 0.5, "true_face_power": 0.1, "eyes_mouth_prio": True, "lr_dropout": "y", "clipgrad": True}


def _saved(model_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    files = ModelFiles(model_dir, "SAEHD")
    return (load_file(str(files.weights)), load_file(str(files.optimizer)),
            json.loads(files.history.read_text()))


def test_save_then_resume_with_gan_is_exact(tmp_path, src_faceset, dst_faceset):
    """Two iterations in one run == one, save, resume, one more: the autoencoder, both discriminators, their
    AdaBelief states (with LR dropout's random masks) and the sample stream all continue exactly."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    reports = []
    train_model(once, src_faceset, dst_faceset, "SAEHD", dict(RUN), max_iterations=2, device="cpu", seed=3,
                on_iteration=reports.append)
    train_model(twice, src_faceset, dst_faceset, "SAEHD", dict(RUN), max_iterations=1, device="cpu", seed=3)
    result = train_model(twice, src_faceset, dst_faceset, "SAEHD", {}, max_iterations=1, device="cpu", seed=3)
    assert result.iteration == 2
    assert {"gan", "true_face"} <= set(reports[-1].part_losses)  # both discriminators trained
    (wa, oa, ha), (wb, ob, hb) = _saved(once), _saved(twice)
    assert any(k.startswith("patch_d.") for k in wa) and any(k.startswith("code_d.") for k in wa)
    assert wa.keys() == wb.keys() and oa.keys() == ob.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)
    for key in oa:
        torch.testing.assert_close(oa[key], ob[key], rtol=0, atol=0, msg=key)
    assert ha == hb


def test_gan_can_be_switched_on_for_a_model_trained_without_it(tmp_path, src_faceset, dst_faceset):
    model_dir = tmp_path / "model"
    plain = {**RUN, "gan_power": 0.0, "true_face_power": 0.0}
    train_model(model_dir, src_faceset, dst_faceset, "SAEHD", plain, max_iterations=1, device="cpu", seed=0)
    before = _saved(model_dir)[0]
    reports = []
    train_model(model_dir, src_faceset, dst_faceset, "SAEHD", {"gan_power": 0.5}, max_iterations=1, device="cpu",
                seed=0, on_iteration=reports.append)
    after = _saved(model_dir)[0]
    assert set(reports[-1].part_losses) == {"gan"}
    changed = lambda prefix: any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))
    assert changed("patch_d.") and not changed("code_d.")

    # merge loads it like any model: the swap of real dst faces, with both masks
    swapper = Swapper.load(model_dir, device="cpu")
    assert (swapper.resolution, swapper.face_type, swapper.learn_mask) == (64, "full", True)
    cache = FaceCache.build(dst_faceset, "full", 64)
    try:
        faces, src_masks, dst_masks = swapper.predict(np.array(cache.faces[:2]))
    finally:
        cache.close()
    assert faces.shape == (2, 64, 64, 3) and src_masks.shape[0] == dst_masks.shape[0] == 2
    assert 0 <= faces.min() and faces.max() <= 1
