"""The optimizer every model trains with: Adam with the seed's betas, one fused kernel per step where torch has it."""

from __future__ import annotations

import torch

ADAM_BETAS = (0.5, 0.999)


def new_adam(groups, lr: float, device: torch.device | str) -> torch.optim.Adam:
    """Adam over ``groups`` (parameters or param-group dicts) living on ``device``.

    The fused implementation updates all tensors in one kernel (CPU and CUDA); it measured ~2 % faster per SAE step
    on the CPU and saves many small launches on a GPU. Its state_dict is the same as the plain one, so models saved
    either way resume either way.
    """
    fused = torch.device(device).type in ("cpu", "cuda")
    return torch.optim.Adam(groups, lr=lr, betas=ADAM_BETAS, fused=fused)
