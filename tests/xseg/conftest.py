"""Real faces for the XSeg tests: the demo workspace (tests/conftest.py: frames,
aligned src and dst faces, a tiny SAE, merged frames), and a tiny XSeg trained on its faces once."""

from __future__ import annotations

from pathlib import Path

import pytest

# Every width at its smallest: a 2-core CPU runs an iteration in a fraction of a second.
TINY = {"resolution": 64, "channels": 4, "batch_size": 4, "learning_rate": 2e-3, "save_minutes": 600.0}
TINY_ITERATIONS = 6


@pytest.fixture(scope="session")
def tiny_xseg(demo_workspace, tmp_path_factory) -> Path:
    """A tiny generic-start XSeg trained TINY_ITERATIONS iterations on the demo faces: its folder (copy it
    before changing it)."""
    from facelab.xseg.trainer import train_xseg

    folder = tmp_path_factory.mktemp("tiny_xseg") / "xseg"
    train_xseg(folder, [demo_workspace / "data_src/aligned", demo_workspace / "data_dst/aligned"], dict(TINY),
               max_iterations=TINY_ITERATIONS, seed=0)
    return folder


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread: on the shared 2-core test machine a tiny net's backward pass is ~20× slower with two
    threads spinning against other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
