"""Several GPUs: this process's place in a ``torchrun`` job, and the few collective calls training needs.

Each process trains on its own GPU with DistributedDataParallel; rank 0 alone saves, previews and reports.
Without torchrun (``WORLD_SIZE`` unset or 1) every call is a no-op on one device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from facelab.device import resolve_devices
from facelab.errors import DeviceError


@dataclass
class Distributed:
    """This process's place in a torchrun job (world size 1 without one)."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @classmethod
    def start(cls, spec: str) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            device = resolve_devices(spec)[0]
            if device.type == "cpu":
                torch.set_num_threads(os.cpu_count() or 1)
            return cls(device)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            if local >= torch.cuda.device_count():
                raise DeviceError(f"torchrun started more processes than GPUs ({torch.cuda.device_count()})",
                                  fix="use --nproc-per-node equal to the GPU count")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device, torch.distributed.get_rank(), world)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DDP (gradients averaged over the processes in backward); itself alone.

        Unused parameters are expected: the swap decoder runs without gradients, and an extra part's step
        uses only that part."""
        if self.world <= 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def agree(self, flags: list[bool]) -> list[bool]:
        """Each flag true on any process (so all processes stop, save or roll back together)."""
        if self.world <= 1:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
