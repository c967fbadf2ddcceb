"""Training on the CPU keeps freed memory for the next step: a re-allocated large tensor does not page-fault again."""

from __future__ import annotations

import inspect
import resource
import subprocess
import sys

import pytest
import torch

from facelab.train import heap

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="the allocator setting exists on glibc only")


def _page_faults_of_reallocating(times: int = 4, mib: int = 48, warmup: int = 8) -> int:
    """Minor page faults of allocating, filling and freeing a ``mib`` MiB tensor ``times`` times, after ``warmup``
    times (glibc's aligned allocations settle into reusing the freed blocks after a few rounds, as training
    steps do)."""
    def reallocate(count: int) -> None:
        for _ in range(count):
            block = torch.ones(mib * 2 ** 20 // 4)
            del block

    reallocate(warmup)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    reallocate(times)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_freed_memory_is_reused_while_training():
    # In a fresh process: the suite's own heap holds whatever earlier tests freed.
    script = ("import resource, torch\n" + inspect.getsource(_page_faults_of_reallocating) +
              "f = _page_faults_of_reallocating\n"
              "from facelab.train import heap\n"
              "default = f()\n"
              "with heap.reuse_freed_memory():\n"
              "    kept = f()\n"
              "print(default, kept, heap._users)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    default, kept, users = map(int, run.stdout.split())
    # glibc maps every block over 32 MiB afresh by default; kept, the freed blocks are reused
    assert kept < default / 2
    assert users == 0  # left: glibc's defaults are back


def test_a_nested_user_leaving_does_not_end_the_outer_ones_setting():
    default = _page_faults_of_reallocating()
    with heap.reuse_freed_memory():
        with heap.reuse_freed_memory():
            pass
        assert _page_faults_of_reallocating() < default / 2


def test_disabled_it_changes_nothing():
    with heap.reuse_freed_memory(enabled=False) as active:
        assert not active
        assert heap._users == 0
