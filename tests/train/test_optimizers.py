"""SAEHD's optimizers: AdaBelief and RMSprop match their formulas (and torch's Adam / RMSprop), LR dropout drops."""

from __future__ import annotations

import pytest
import torch

from facelab.train.optimizers import OPTIMIZERS, AdaBelief, RMSprop, lr_dropout_settings


def _quadratic_steps(opt_factory, steps: int = 5, seed: int = 0) -> torch.Tensor:
    """Run ``steps`` steps of an optimizer on f(w) = Σ (w − t)²·c with fixed random t, c; returns the final w."""
    g = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(4, 7, generator=g))
    t, c = torch.randn(4, 7, generator=g), torch.rand(4, 7, generator=g) + 0.1
    opt = opt_factory([w])
    for _ in range(steps):
        opt.zero_grad()
        ((w - t).square() * c).sum().backward()
        opt.step()
    return w.detach()


def test_adabelief_first_steps_follow_the_formula():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    opt = AdaBelief([w], lr=0.1, betas=(0.5, 0.9), eps=1e-8)
    grads = [torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.1, 0.5, 1.0])]
    m = s = torch.zeros(3)
    expected = w.detach().clone()
    for t, grad in enumerate(grads, 1):
        w.grad = grad.clone()
        opt.step()
        m = 0.5 * m + 0.5 * grad
        s = 0.9 * s + 0.1 * (grad - m) ** 2 + 1e-8
        expected = expected - 0.1 * (m / (1 - 0.5 ** t)) / ((s / (1 - 0.9 ** t)).sqrt() + 1e-8)
        assert torch.allclose(w.detach(), expected, atol=1e-6)


def test_adabelief_without_belief_is_adam():
    ours = _quadratic_steps(lambda p: AdaBelief(p, lr=0.05, betas=(0.5, 0.999), eps=1e-7, belief=False))
    torch_adam = _quadratic_steps(lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.5, 0.999), eps=1e-7))
    assert torch.allclose(ours, torch_adam, atol=1e-6)


def test_rmsprop_is_torchs_rmsprop():
    ours = _quadratic_steps(lambda p: RMSprop(p, lr=0.01, rho=0.9, eps=1e-7))
    theirs = _quadratic_steps(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7))
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("choice", ["y", "cpu"])
@pytest.mark.parametrize("name", ["adabelief", "adam", "rmsprop"])
def test_lr_dropout_keeps_about_30_percent_of_updates(name, choice):
    keep, on_cpu = lr_dropout_settings(choice)
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(200, 100))
    opt = OPTIMIZERS.get(name)([w], 1e-3, keep, on_cpu)
    w.grad = torch.ones_like(w)
    opt.step()
    moved = (w.detach() != 0).float().mean().item()
    assert abs(moved - 0.3) < 0.02
    moment = opt.state[w]["exp_avg" if name != "rmsprop" else "square_avg"]
    assert bool((moment != 0).all())  # the moments see every gradient, dropped or not


@pytest.mark.parametrize("name", ["adabelief", "adam", "rmsprop"])
def test_a_kept_update_is_the_full_step_and_a_dropped_one_is_none(name):
    # Two steps, so the moments differ from the gradient and the dropout path's division is exercised.
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(50, 40, generator=g) for _ in range(2)]
    start = torch.randn(50, 40, generator=g)
    moved = {}
    for keep in (1.0, 0.3):
        torch.manual_seed(0)
        w = torch.nn.Parameter(start.clone())
        opt = OPTIMIZERS.get(name)([w], 1e-2, keep)
        for i, grad in enumerate(grads):
            before = w.detach().clone()
            w.grad = grad.clone()
            opt.step()
        moved[keep] = (before, w.detach() - before)
    full = moved[1.0][1]
    step = moved[0.3][1]
    kept = step != 0
    assert 0.2 < kept.float().mean() < 0.4
    # the moments saw the same gradients either way, so a kept coordinate takes the undropped step
    assert torch.allclose(step[kept], full[kept], rtol=1e-4, atol=1e-7)


def test_state_dict_resumes_exactly():
    def run(split: bool) -> torch.Tensor:
        torch.manual_seed(1)
        w = torch.nn.Parameter(torch.randn(30))
        opt = AdaBelief([w], lr=0.01, lr_dropout=0.3)
        for i in range(6):
            if split and i == 3:
                state, rng = opt.state_dict(), torch.get_rng_state()
                w = torch.nn.Parameter(w.detach().clone())
                opt = AdaBelief([w], lr=0.01, lr_dropout=0.3)
                opt.load_state_dict(state)
                torch.set_rng_state(rng)
            opt.zero_grad()
            (w ** 2).sum().backward()
            opt.step()
        return w.detach()

    assert torch.equal(run(False), run(True))


def test_a_resumed_optimizer_keeps_this_runs_settings():
    w = torch.nn.Parameter(torch.ones(10))
    old = AdaBelief([w], lr=0.01)
    w.grad = torch.ones(10)
    old.step()
    new = AdaBelief([w], lr=0.01, lr_dropout=0.3, belief=False)
    new.load_state_dict(old.state_dict())
    assert new.param_groups[0]["lr_dropout"] == 0.3 and new.param_groups[0]["belief"] is False
    assert new.state[w]["step"] == 1 and torch.equal(new.state[w]["exp_avg"], old.state[w]["exp_avg"])


def test_lr_dropout_must_be_a_probability():
    with pytest.raises(ValueError, match="keep probability"):
        AdaBelief([torch.nn.Parameter(torch.zeros(1))], lr_dropout=0.0)
