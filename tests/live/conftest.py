"""Live tests: an untrained tiny SAE (real network; speed and geometry do not depend on training) and real frames
of the dst demo clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facelab.extract.frames import video_frames
from facelab.io.video import cut
from facelab.options import validate
from facelab.train import checkpoint
from facelab.train.models.build import build_model, option_specs
from facelab.train.swap import Swapper

from ..conftest import TINY_MODELS

TINY_SAE = TINY_MODELS["SAE"]  # a full face with a learned mask, SAE's defaults
CLIP_SECONDS = 0.5  # 15 frames of the 30 fps dst clip


@pytest.fixture(scope="session")
def swapper() -> Swapper:
    torch.manual_seed(0)
    model = build_model("SAE", validate(option_specs("SAE"), TINY_SAE)).eval()
    return Swapper(model, torch.device("cpu"), "SAE", 0)


@pytest.fixture(scope="session")
def dst_frames(dst_video) -> list[np.ndarray]:
    """The first 24 frames of the dst demo clip (a man, 640×360), (H, W, 3) uint8 BGR."""
    out = []
    for frame in video_frames(dst_video):
        out.append(frame.image)
        if len(out) == 24:
            return out
    return out


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, dst_video) -> Path:
    """The first half second of the dst demo clip as its own H.264 file (15 frames, with its sound)."""
    return cut(dst_video, 0.0, CLIP_SECONDS, out_path=tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, swapper) -> Path:
    """A model folder holding the tiny SAE, saved as training saves it."""
    folder = tmp_path_factory.mktemp("model")
    checkpoint.save(checkpoint.ModelFiles(folder, "SAE"), swapper.model, None, validate(option_specs("SAE"), TINY_SAE),
                    checkpoint.TrainState())
    return folder


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """`facelab live` sets torch's (process-wide) thread count for its stream; give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
