"""The mixed-precision policy: which float type a training step computes in, on which device, in which layout.

One option (``amp``) decides it; the trainer, the benchmarks and the scores read it through these functions.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import ContextManager

import torch

from facelab.errors import OptionError
from facelab.options import Option

AMP_CHOICES = ("auto", "off", "bf16", "fp16")
AMP_OPTION = Option(
    "amp", "auto",
    "Mixed precision: auto (bf16 on CPUs with AVX-512-BF16 or AMX, where it measured 2-4x faster; bf16, else fp16, "
    "on CUDA), off (float32), bf16 or fp16 (CUDA only).",
    choices=AMP_CHOICES, prompt="Mixed precision")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX-512-BF16 or AMX-BF16 in /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def amp_dtype(device: torch.device | str, amp: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for plain float32."""
    device = torch.device(device)
    if amp not in AMP_CHOICES:
        raise OptionError(f"--amp got {amp!r}", fix=f"use one of {', '.join(AMP_CHOICES)}")
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16
    if device.type == "cpu":
        if amp == "fp16":
            raise OptionError("--amp fp16 works on CUDA only", fix="use --amp bf16 or auto on the CPU")
        if amp == "bf16" or cpu_has_fast_bf16():
            return torch.bfloat16
    return None


def autocast_context(device: torch.device | str, amp: str) -> ContextManager:
    """``torch.autocast`` for ``amp`` on ``device`` (a no-op context for float32).

    fp16 needs a ``torch.amp.GradScaler`` around the optimizer step (see ``needs_grad_scaler``); bf16 does not.
    """
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def needs_grad_scaler(device: torch.device | str, amp: str) -> bool:
    return amp_dtype(device, amp) is torch.float16


def preferred_memory_format(device: torch.device | str, amp: str = "off") -> torch.memory_format:
    """channels_last on CUDA (tensor cores) and for bf16 on the CPU (oneDNN's bf16 convolutions measured ~9 %
    faster per SAE step in it); plain NCHW for float32 on the CPU, where channels_last measured slower."""
    device = torch.device(device)
    if device.type == "cuda" or amp_dtype(device, amp) is torch.bfloat16:
        return torch.channels_last
    return torch.contiguous_format
