"""Choosing compute devices: ``auto|cpu|cuda|cuda:N|all`` (auto = the GPU with most free memory, else CPU)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facelab.errors import DeviceError
from facelab.options import Option

if TYPE_CHECKING:
    import torch

DEVICE_OPTION = Option("device", "auto", "auto (GPU with most free memory, else CPU), cpu, cuda, cuda:N or all (one worker per GPU).",
                       type=str, prompt="Device")


def resolve_devices(spec: str = "auto") -> list[torch.device]:
    """The devices a step should use for ``spec``; DeviceError for a GPU that is not there."""
    import torch  # here, not at the top: CLI modules import DEVICE_OPTION and `facelab --help` must stay fast

    spec = (spec or "auto").strip().lower()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "cpu":
        return [torch.device("cpu")]
    if spec == "auto":
        if not gpus:
            return [torch.device("cpu")]
        free = [torch.cuda.mem_get_info(i)[0] for i in range(gpus)]
        return [torch.device("cuda", max(range(gpus), key=free.__getitem__))]
    if spec == "all":
        return [torch.device("cuda", i) for i in range(gpus)] or [torch.device("cpu")]
    if spec == "cuda" or spec.startswith("cuda:"):
        index = 0 if spec == "cuda" else _index(spec)
        if index >= gpus:
            raise DeviceError(f"device {spec!r} is not available ({gpus} CUDA GPU(s) found)",
                              fix="use --device cpu or auto")
        return [torch.device("cuda", index)]
    raise DeviceError(f"unknown device {spec!r}", fix="use auto, cpu, cuda, cuda:N or all")


def chosen_gpu_index(spec: str | None) -> int | None:
    """The GPU index the user picked in ``spec`` (``cuda:N`` → N), or None for a default choice (auto, cpu, cuda,
    all): a model trained on a picked GPU names its files after it (``train.checkpoint.saved_name``)."""
    spec = (spec or "auto").strip().lower()
    return _index(spec) if spec.startswith("cuda:") else None


def _index(spec: str) -> int:
    try:
        index = int(spec.split(":", 1)[1])
    except ValueError:
        index = -1
    if index < 0:
        raise DeviceError(f"unknown device {spec!r}", fix="use cuda:0, cuda:1, ...")
    return index
