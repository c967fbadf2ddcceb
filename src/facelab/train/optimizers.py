"""Optimizers DeepFaceLab 2's models train with: AdaBelief (and Adam) and RMSprop, each with learning-rate dropout.

Learning-rate dropout (Lin et al. 2019, "Learning rate dropout"): every step each weight's update is kept with
probability ``lr_dropout`` and dropped otherwise, while the moment estimates still see every gradient. It acts like
a noisy, coordinate-wise learning-rate schedule that helps the end of training escape flat regions (SAEHD's "y",
with keep probability 0.3). ``dropout_on_cpu`` draws those masks on the CPU and copies them over (SAEHD's "cpu":
no GPU memory for the random masks).

``clip_norm`` > 0 scales all gradients of the optimizer down together when their global L2 norm exceeds it
(SAEHD's "clip gradients"), before the moments see them.

The state is per parameter: tensors (``exp_avg``, ``exp_var`` or ``square_avg``) and an integer ``step``, so
``checkpoint`` saves it as safetensors + JSON like Adam's. Parameters must be floating point.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import Tensor

from facelab.registry import Registry

# SAEHD's values: beta1 0.5 (momentum that forgets fast, for a target that keeps changing), epsilon 1e-7.
SAEHD_BETAS = (0.5, 0.999)
SAEHD_EPS = 1e-7
RMSPROP_RHO = 0.9
LR_DROPOUT_KEEP = 0.3


class _DropoutOptimizer(torch.optim.Optimizer):
    """Base: collects the parameters with gradients per group, asks ``_step_parts`` for the steps, drops some, applies.

    ``step`` uses the gradients' memory as scratch: afterwards they hold no gradient (training sets them to None
    before the next backward pass)."""

    def __init__(self, params: Iterable, defaults: dict[str, Any], clip_norm: float = 0.0):
        if not 0.0 < defaults["lr_dropout"] <= 1.0:
            raise ValueError(f"lr_dropout is a keep probability in (0, 1], got {defaults['lr_dropout']}")
        super().__init__(params, defaults)
        self.clip_norm = clip_norm

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]], self.clip_norm)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad.float() if p.grad.dtype != p.dtype else p.grad for p in params]
            states = [self.state[p] for p in params]
            for p, s in zip(params, states):
                if not s:
                    self._init_state(p, s)
                s["step"] = int(s["step"]) + 1
            numerators, denominators, scale = self._step_parts(group, grads, states)
            if group["lr_dropout"] < 1.0:
                torch._foreach_reciprocal_(denominators)  # in place: the scratch becomes the step direction
                torch._foreach_mul_(denominators, numerators)
                torch._foreach_mul_(denominators, _keep_masks(denominators, group["lr_dropout"],
                                                              group["dropout_on_cpu"]))
                torch._foreach_add_(params, denominators, alpha=scale)
            else:
                torch._foreach_addcdiv_(params, numerators, denominators, value=scale)
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the moments and step counts; the hyper-parameters stay this run's (torch would take the saved
        ones), so switching LR dropout on, or AdaBelief off, for a model that exists takes effect."""
        current = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        super().load_state_dict(state_dict)
        for group, settings in zip(self.param_groups, current):
            group.update(settings)

    def _init_state(self, p: Tensor, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step_parts(self, group: dict, grads: list[Tensor], states: list[dict]
                    ) -> tuple[list[Tensor], list[Tensor], float]:
        """Update the moments in ``states`` and return (numerators, denominators, scale): each parameter moves by
        ``scale · numerator / denominator``. The denominators may be written into ``grads``' memory (scratch)."""
        raise NotImplementedError  # pragma: no cover - abstract


def _keep_masks(like: list[Tensor], keep: float, on_cpu: bool) -> list[Tensor]:
    """One Bernoulli(keep) 0/1 mask per tensor, drawn from torch's (CPU or device) generator."""
    if on_cpu:
        return [torch.bernoulli(torch.full(t.shape, keep)).to(t.device, t.dtype, non_blocking=True) for t in like]
    return [torch.bernoulli(torch.full_like(t, keep)) for t in like]


class AdaBelief(_DropoutOptimizer):
    """AdaBelief (Zhuang et al. 2020): Adam whose second moment is the variance of the gradient around its running
    mean, ``s = β2·s + (1−β2)·(g − m)² + ε``, so steps are large where the gradient is predictable and small where
    it is noisy. With bias correction: ``θ −= lr · m̂ / (√ŝ + ε)``.

    ``belief=False`` keeps ``s = β2·s + (1−β2)·g²`` instead: exactly Adam (Kingma & Ba 2015), so both share the
    learning-rate dropout.
    """

    def __init__(self, params: Iterable, lr: float = 5e-5, betas: tuple[float, float] = SAEHD_BETAS,
                 eps: float = SAEHD_EPS, *, belief: bool = True, lr_dropout: float = 1.0,
                 dropout_on_cpu: bool = False, clip_norm: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, belief=belief, lr_dropout=lr_dropout,
                                      dropout_on_cpu=dropout_on_cpu), clip_norm)

    def _init_state(self, p: Tensor, state: dict) -> None:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_var"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _step_parts(self, group, grads, states):
        # In place, with the gradients as scratch: at ~100 M weights each new tensor costs page faults, and the
        # allocating version took 3x as long per step. √(1 − β2^t) is moved from ŝ into the scale:
        # m̂ / (√ŝ + ε) = c · m / (√s + c·ε) / (1 − β1^t) with c = √(1 − β2^t).
        b1, b2 = group["betas"]
        eps, step = group["eps"], states[0]["step"]
        m = [s["exp_avg"] for s in states]
        v = [s["exp_var"] for s in states]
        torch._foreach_lerp_(m, grads, 1 - b1)  # m = b1·m + (1 − b1)·g
        if group["belief"]:
            torch._foreach_sub_(grads, m)  # g − m
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        if group["belief"]:
            torch._foreach_add_(v, eps)
        for scratch, var in zip(grads, v):
            torch.sqrt(var, out=scratch)
        c = math.sqrt(1 - b2 ** step)
        torch._foreach_add_(grads, c * eps)
        return m, grads, -group["lr"] * c / (1 - b1 ** step)


class RMSprop(_DropoutOptimizer):
    """RMSprop (Tieleman & Hinton 2012): ``a = ρ·a + (1−ρ)·g²``, ``θ −= lr · g / (√a + ε)``; Quick96's optimizer."""

    def __init__(self, params: Iterable, lr: float = 2e-4, rho: float = RMSPROP_RHO, eps: float = SAEHD_EPS, *,
                 lr_dropout: float = 1.0, dropout_on_cpu: bool = False, clip_norm: float = 0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, lr_dropout=lr_dropout, dropout_on_cpu=dropout_on_cpu),
                         clip_norm)

    def _init_state(self, p: Tensor, state: dict) -> None:
        state["step"] = 0
        state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _step_parts(self, group, grads, states):
        a = [s["square_avg"] for s in states]
        torch._foreach_mul_(a, group["rho"])
        torch._foreach_addcmul_(a, grads, grads, value=1 - group["rho"])
        denom = torch._foreach_sqrt(a)  # the gradients are the numerators here, so not scratch
        torch._foreach_add_(denom, group["eps"])
        return grads, denom, -group["lr"]


# name → factory(groups, lr, lr_dropout keep probability, dropout_on_cpu, clip_norm)
OPTIMIZERS: Registry = Registry("optimizer")


@OPTIMIZERS.register("adabelief")
def adabelief(groups, lr: float, keep: float = 1.0, on_cpu: bool = False, clip_norm: float = 0.0) -> AdaBelief:
    return AdaBelief(groups, lr, lr_dropout=keep, dropout_on_cpu=on_cpu, clip_norm=clip_norm)


@OPTIMIZERS.register("adam")
def adam(groups, lr: float, keep: float = 1.0, on_cpu: bool = False, clip_norm: float = 0.0) -> AdaBelief:
    return AdaBelief(groups, lr, belief=False, lr_dropout=keep, dropout_on_cpu=on_cpu, clip_norm=clip_norm)


@OPTIMIZERS.register("rmsprop")
def rmsprop(groups, lr: float, keep: float = 1.0, on_cpu: bool = False, clip_norm: float = 0.0) -> RMSprop:
    return RMSprop(groups, lr, lr_dropout=keep, dropout_on_cpu=on_cpu, clip_norm=clip_norm)


def lr_dropout_settings(choice: str) -> tuple[float, bool]:
    """SAEHD's ``lr_dropout`` choice ("n", "y", "cpu") → (keep probability, draw the masks on the CPU)."""
    return {"n": (1.0, False), "y": (LR_DROPOUT_KEEP, False), "cpu": (LR_DROPOUT_KEEP, True)}[choice]
