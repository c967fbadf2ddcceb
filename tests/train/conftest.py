"""Small real facesets for the training tests: faces extracted from the two demo videos, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import TINY_MODELS

FACE_SIZE = 128  # files at 128 px; the tests' models train at 64 px (a plain resize) or re-crop them


@pytest.fixture(scope="session")
def src_faceset(tmp_path_factory, src_video, faceset_from_video) -> Path:
    """~30 aligned full faces of the woman in the src demo video (128 px JPEGs with metadata)."""
    return faceset_from_video(src_video, tmp_path_factory.mktemp("faces") / "src_aligned", 15, 30, FACE_SIZE)


@pytest.fixture(scope="session")
def dst_faceset(tmp_path_factory, dst_video, faceset_from_video) -> Path:
    """~20 aligned full faces of the man in the dst demo video."""
    return faceset_from_video(dst_video, tmp_path_factory.mktemp("faces") / "dst_aligned", 3, 20, FACE_SIZE)


# The smallest SAE at 64 px: every width at its minimum, so a CPU trains it in seconds per iteration.
TINY_SAE = {**TINY_MODELS["SAE"], "face_type": "full", "batch_size": 4, "workers": 0, "learning_rate": 3e-4,
            "amp": "off"}
TRAINED_ITERATIONS = 16


@pytest.fixture(scope="session")
def trained_sae(tmp_path_factory, src_faceset, dst_faceset):
    """A tiny SAE trained TRAINED_ITERATIONS iterations on the demo facesets (seed 0): (model_dir, result,
    per-iteration reports). Tests copy the folder before changing it."""
    from facelab.train.trainer import train_model

    model_dir = tmp_path_factory.mktemp("model")
    reports = []
    result = train_model(model_dir, src_faceset, dst_faceset, "SAE", dict(TINY_SAE),
                         max_iterations=TRAINED_ITERATIONS, device="cpu", seed=0, on_iteration=reports.append)
    return model_dir, result, reports


@pytest.fixture(scope="module")
def caches(src_faceset, dst_faceset):
    """(src, dst) FaceCaches of the demo facesets at 64 px full face, with eye/mouth masks."""
    from facelab.train.samples import FaceCache

    src = FaceCache.build(src_faceset, "full", 64, eyes_mouth=True)
    dst = FaceCache.build(dst_faceset, "full", 64, eyes_mouth=True)
    yield src, dst
    src.close()
    dst.close()

