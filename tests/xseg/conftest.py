"""The XSeg tests run on the demo workspace and the tiny XSeg of tests/conftest.py; here, one torch thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread: on the shared 2-core test machine a tiny net's backward pass is ~20× slower with two
    threads spinning against other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
