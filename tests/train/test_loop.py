"""The training loop's plug-ins and run options: extra parts (a discriminator with its own optimizer) train,
save and resume exactly; run-only flags apply to one run and are not saved into the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from facelab.errors import OptionError
from facelab.train import checkpoint
from facelab.train.checkpoint import ModelFiles
from facelab.train.models import MODELS
from facelab.train.models.base import ExtraPart
from facelab.train.models.sae import SAE
from facelab.train.optim import OptimizerSet, new_adam
from facelab.train.trainer import train_model

from .conftest import TINY_SAE, TRAINED_ITERATIONS

CRITIC_RATE = 1e-4


class _SAEWithCritic(SAE):
    """SAE plus a tiny patch critic trained against it (a GAN term in the autoencoder's loss), and one more
    critic declared but inactive."""

    def __init__(self, options):
        super().__init__(options)
        self.critic = nn.Conv2d(3, 1, 8, stride=8)
        self.idle = nn.Conv2d(3, 1, 8, stride=8)

    def extra_parts(self):
        return {"critic": ExtraPart(self.critic, self.critic_loss, learning_rate=CRITIC_RATE),
                "idle": ExtraPart(self.idle, self.critic_loss, active=False)}

    def loss(self, batch, out):
        losses = super().loss(batch, out)
        fake = self.critic(out["src_src"].float())
        gan = 0.1 * F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        return {**losses, "src": losses["src"] + gan, "total": losses["total"] + gan}

    def critic_loss(self, batch, out):
        real, fake = self.critic(batch["src_target"].float()), self.critic(out["src_src"].float())
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


@pytest.fixture
def critic_model(monkeypatch):
    monkeypatch.setitem(MODELS._items, "SAE_CRITIC", _SAEWithCritic)
    return "SAE_CRITIC"


def _weights(model_dir: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(ModelFiles(model_dir, name).weights))


def test_extra_part_trains_with_its_own_optimizer_and_resumes_exactly(critic_model, tmp_path, src_faceset,
                                                                      dst_faceset):
    first = tmp_path / "first"
    reports = []
    train_model(first, src_faceset, dst_faceset, critic_model, dict(TINY_SAE), max_iterations=2, device="cpu",
                seed=0, on_iteration=reports.append)
    assert [sorted(r.part_losses) for r in reports] == [["critic"], ["critic"]]  # the idle part does not train
    assert all(0 < r.part_losses["critic"] < 10 for r in reports)

    files = ModelFiles(first, critic_model)
    groups = json.loads(files.optimizer_json.read_text())["param_groups"]
    assert [g["lr"] for g in groups] == [TINY_SAE["learning_rate"], CRITIC_RATE, TINY_SAE["learning_rate"]]
    assert [len(g["params"]) for g in groups[1:]] == [2, 2]  # each critic: weight and bias, not the autoencoder's
    saved = load_file(str(files.optimizer))
    critic_index = groups[1]["params"][0]
    assert f"state.{critic_index}.exp_avg" in saved  # the critic's Adam moments are saved
    assert not any(k.startswith(f"state.{groups[2]['params'][0]}.") for k in saved)  # the idle one has none yet

    start = _weights(first, critic_model)
    once, twice = (Path(shutil.copytree(first, tmp_path / n)) for n in ("once", "twice"))
    train_model(once, src_faceset, dst_faceset, critic_model, {}, max_iterations=2, device="cpu")
    train_model(twice, src_faceset, dst_faceset, critic_model, {}, max_iterations=1, device="cpu")
    train_model(twice, src_faceset, dst_faceset, critic_model, {}, max_iterations=1, device="cpu")
    a, b = _weights(once, critic_model), _weights(twice, critic_model)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert not torch.equal(a["critic.weight"], start["critic.weight"])  # the critic learned
    assert torch.equal(a["idle.weight"], start["idle.weight"])  # the inactive part stayed as it was


def test_optimizer_set_saves_like_one_optimizer_and_splits_back():
    torch.manual_seed(0)
    nets = [nn.Linear(3, 2), nn.Linear(2, 1)]
    opts = [new_adam(net.parameters(), 1e-3, "cpu") for net in nets]
    for net, opt in zip(nets, opts):
        net(torch.ones(1, net.in_features)).sum().backward()
        opt.step()
    alone = OptimizerSet({"model": opts[0]})
    assert alone.state_dict() == opts[0].state_dict()  # models without extra parts save exactly as before

    both = OptimizerSet({"model": opts[0], "critic": opts[1]})
    sd = both.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]] and sorted(sd["state"]) == [0, 1, 2, 3]
    fresh = [new_adam(net.parameters(), 1e-3, "cpu") for net in nets]
    OptimizerSet({"model": fresh[0], "critic": fresh[1]}).load_state_dict(sd)
    for loaded, original in zip(fresh, opts):
        for p_new, p_old in zip(loaded.state.values(), original.state.values()):
            torch.testing.assert_close(p_new["exp_avg"], p_old["exp_avg"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="2 parameter groups, this model 1"):
        alone.load_state_dict(sd)


def _cli_train(run_cli, model_dir: Path, src: Path, dst: Path, *flags: str):
    return run_cli("train", "--model", "SAE", "--model-dir", str(model_dir), "--src-aligned", str(src),
                   "--dst-aligned", str(dst), "--device", "cpu", "--yes", *flags)


def test_run_flags_apply_to_that_run_only(trained_sae, tmp_path, src_faceset, dst_faceset, run_cli):
    model_dir = Path(shutil.copytree(trained_sae[0], tmp_path / "model"))
    files = ModelFiles(model_dir, "SAE")
    before = checkpoint.load_options(files)
    target = TRAINED_ITERATIONS + 1
    run = _cli_train(run_cli, model_dir, src_faceset, dst_faceset, "--target-iteration", str(target),
                     "--save-minutes", "0", "--workers", "0")
    assert run.code == 0, run.err
    assert f"Saved SAE at iteration {target}" in run.out and "stopped: target" in run.out
    assert checkpoint.load_options(files) == before  # none of the three was saved

    run = _cli_train(run_cli, model_dir, src_faceset, dst_faceset, "--iterations", "1")
    assert run.code == 0, run.err
    assert f"Saved SAE at iteration {target + 1}" in run.out and "stopped: iterations" in run.out


def test_run_flags_on_a_new_model_are_not_saved_either(tmp_path, src_faceset, dst_faceset, run_cli):
    model_dir = tmp_path / "model"
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_SAE.items() if k not in ("workers", "face_type")]
    run = _cli_train(run_cli, model_dir, src_faceset, dst_faceset, *tiny, "--target-iteration", "1",
                     "--save-minutes", "30", "--workers", "0")
    assert run.code == 0, run.err
    assert "Saved SAE at iteration 1" in run.out and "stopped: target" in run.out
    saved = checkpoint.load_options(ModelFiles(model_dir, "SAE"))
    assert (saved["target_iteration"], saved["save_minutes"], saved["workers"]) == (0, 15.0, -1)  # the defaults
    assert saved["batch_size"] == TINY_SAE["batch_size"]  # model options given as flags are saved


def test_only_run_options_can_be_run_options(trained_sae, src_faceset, dst_faceset):
    with pytest.raises(OptionError, match="batch_size is not a run option"):
        train_model(trained_sae[0], src_faceset, dst_faceset, "SAE", {}, run_options={"batch_size": 2},
                    max_iterations=1, device="cpu")
    with pytest.raises(OptionError, match="--save-minutes got -1"):
        train_model(trained_sae[0], src_faceset, dst_faceset, "SAE", {}, run_options={"save_minutes": -1},
                    max_iterations=1, device="cpu")
