"""Every registered model trained one iteration on real faces and exported once per session, for the export tests.

Faces: a few frames of the two demo videos (a woman as src, a man as dst), aligned as full faces at 128 px.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ..conftest import TINY_MODELS as TINY

RUN = {"batch_size": 2, "workers": 0, "amp": "off"}


@pytest.fixture(scope="session")
def facesets(tmp_path_factory, src_video, dst_video, faceset_from_video) -> tuple[Path, Path]:
    """(src aligned folder, dst aligned folder): 6 real faces each."""
    root = tmp_path_factory.mktemp("export_faces")
    return (faceset_from_video(src_video, root / "src_aligned", 40, 6),
            faceset_from_video(dst_video, root / "dst_aligned", 10, 6))


@dataclass(frozen=True)
class Trained:
    name: str
    model_dir: Path
    dfm: Path  # its export (default name, beside its files)


@pytest.fixture(scope="session")
def train(facesets):
    """``train(model_dir, name, **options)``: train ``name`` at its TINY settings (and ``options``) 1 iteration."""
    from facelab.train.trainer import train_model

    def run(model_dir: Path, name: str, **options) -> None:
        train_model(model_dir, *facesets, name, {**TINY[name], **RUN, **options}, max_iterations=1, device="cpu",
                    seed=0)

    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, facesets, train):
    """``trained(name)``: the model ``name`` trained 1 iteration (seed 0) and exported as .dfm, made on first
    use in a test module and deleted after it (the seven models take ~2 GB of disk). Tests copy what they
    change."""
    from facelab.export.exporter import export_model

    made: dict[str, Trained] = {}

    def get(name: str) -> Trained:
        if name not in made:
            model_dir = tmp_path_factory.mktemp(f"model_{name}")
            train(model_dir, name)
            result = export_model(model_dir, None, "dfm")  # the parity test compares it (as --check does)
            made[name] = Trained(name, model_dir, result.path)
        return made[name]

    yield get
    for model in made.values():
        shutil.rmtree(model.model_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def dst_faces_of(facesets):
    """``dst_faces_of(face_type, resolution, limit=3)``: real dst faces re-cropped for a model, (N, R, R, 3) uint8
    (a few: a 128 px classic model takes seconds per face on a busy 2-core CPU)."""
    from facelab.export.check import aligned_folder_faces

    def get(face_type: str, resolution: int, limit: int = 3) -> np.ndarray:
        return aligned_folder_faces(facesets[1], face_type, resolution, limit)

    return get
