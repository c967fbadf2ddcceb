"""Training XSeg on the real demo faces: the generic start learns the face and the occluders, resume is
bit-exact, the saves and the UI's status/preview files are there, labelled faces are the only ones used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facelab.errors import WorkspaceError
from facelab.train import checkpoint, control
from facelab.xseg import augment
from facelab.xseg.data import find_faces, load_face
from facelab.xseg.net import build_net
from facelab.xseg.options import MODEL_NAME, xseg_options
from facelab.xseg.segmenter import Segmenter, predict_masks
from facelab.xseg.trainer import train_xseg

from ..conftest import TINY_XSEG as TINY, TINY_XSEG_ITERATIONS as TINY_ITERATIONS

GENERIC = {"resolution": 64, "channels": 8, "batch_size": 8, "learning_rate": 2e-3, "save_minutes": 600.0}
GENERIC_ITERATIONS = 120


def _faces(ws):
    return [ws / "data_src/aligned", ws / "data_dst/aligned"]


def _scores(predict, faces, resolution):
    """(mean IoU against the landmark hull, mean of (mask on the visible face − mask under a pasted occluder))."""
    rng = np.random.default_rng(123)
    ious, contrasts = [], []
    for source in faces:
        image, hull, _ = load_face(source, resolution)
        mask = predict(image[None])[0]
        ious.append(((mask > 0.5) & (hull > 0.5)).sum() / max(((mask > 0.5) | (hull > 0.5)).sum(), 1))
        occluded, target = augment.paste_over_face(image, hull, augment.synthetic_occluder(resolution, rng), rng)
        under, visible = (hull > 0.5) & (target < 0.5), target > 0.5
        if under.sum() >= 20:
            covered = predict(occluded[None])[0]
            contrasts.append(covered[visible].mean() - covered[under].mean())
    return float(np.mean(ious)), float(np.mean(contrasts))


def test_generic_start_learns_the_face_and_what_covers_it(demo_workspace, tmp_path):
    losses = []
    result = train_xseg(tmp_path / "xseg", _faces(demo_workspace), GENERIC, max_iterations=GENERIC_ITERATIONS,
                        seed=0, on_iteration=lambda r: losses.append(r.loss))
    assert result.generic and result.iteration == GENERIC_ITERATIONS and result.stopped_by == "target iteration"
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])

    faces, _ = find_faces(_faces(demo_workspace), True)
    torch.manual_seed(0)  # the trainer's start: the same seed gives the untrained net it began from
    untrained = build_net(xseg_options(GENERIC))
    before = _scores(lambda f: predict_masks(untrained, f), faces, 64)
    after = _scores(Segmenter.load(tmp_path / "xseg").predict, faces, 64)
    assert after[0] > 0.75 and after[0] > before[0] + 0.3, (before, after)
    assert after[1] > before[1] + 0.08, (before, after)  # the pasted part is "not face" more than before


def _interrupt_at(iteration):
    def on_iteration(report):
        if report.iteration == iteration:
            raise KeyboardInterrupt  # as Ctrl-C would, between two steps
    return on_iteration


def test_resume_continues_bit_exact(demo_workspace, tmp_path):
    # Killed at 3 of 5 and resumed to 5: the same weights as straight to 5 (the learning rate's decay included).
    first = train_xseg(tmp_path / "a", _faces(demo_workspace), TINY, max_iterations=5, seed=1,
                       on_iteration=_interrupt_at(3))
    saved = load_file(str(checkpoint.ModelFiles(tmp_path / "a", MODEL_NAME).weights))
    loaded = Segmenter.load(tmp_path / "a").net.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    resumed = train_xseg(tmp_path / "a", _faces(demo_workspace), TINY, max_iterations=5, seed=1)
    straight = train_xseg(tmp_path / "b", _faces(demo_workspace), TINY, max_iterations=5, seed=1)
    assert (first.iteration, resumed.start_iteration, resumed.iteration, straight.iteration) == (3, 3, 5, 5)
    a = load_file(str(checkpoint.ModelFiles(tmp_path / "a", MODEL_NAME).weights))
    b = load_file(str(checkpoint.ModelFiles(tmp_path / "b", MODEL_NAME).weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = checkpoint.read_json(checkpoint.ModelFiles(tmp_path / "a", MODEL_NAME).history)
    assert history["iteration"] == 5 and len(history["loss_src"]) == 5
    wider = train_xseg(tmp_path / "a", _faces(demo_workspace), {**TINY, "channels": 8}, max_iterations=6)
    assert wider.options["channels"] == TINY["channels"]  # architecture options stay as the model was made


def test_learning_rate_eases_down_over_the_last_share_of_the_run(demo_workspace, tmp_path):
    losses, weights, rates = {}, {}, {}
    for decay in (0.0, 0.5):
        files = checkpoint.ModelFiles(tmp_path / str(decay), MODEL_NAME)
        seen = losses[decay] = []
        train_xseg(files.folder, _faces(demo_workspace), {**TINY, "lr_decay": decay}, max_iterations=4, seed=1,
                   on_iteration=lambda report, seen=seen: seen.append(report.loss))
        weights[decay] = load_file(str(files.weights))
        rates[decay] = [g["lr"] for g in checkpoint.read_json(files.optimizer_json)["param_groups"]]
    assert losses[0.0][:3] == losses[0.5][:3]  # steps 1-3 start at shares 0, 1/4, 2/4: the full rate in both
    assert any(not torch.equal(weights[0.0][k], weights[0.5][k]) for k in weights[0.0])
    # The 4th step starts half-way into the decay: half a cosine from 1 to 0.05 is 0.525 there.
    assert rates[0.0] == pytest.approx([TINY["learning_rate"]])
    assert rates[0.5] == pytest.approx([0.525 * TINY["learning_rate"]])


def test_saves_status_and_preview_for_the_training_page(tiny_xseg):
    assert checkpoint.find_models(tiny_xseg) == [MODEL_NAME]
    assert checkpoint.find_models(tiny_xseg.parent) == []  # not a swap model: merge/train never pick it
    status = control.read_status(tiny_xseg, MODEL_NAME)
    assert status["iteration"] == TINY_ITERATIONS and status["running"] is False
    assert status["stopped_by"] == "target iteration" and len(status["history"]["src"]) == TINY_ITERATIONS
    import cv2

    preview = cv2.imread(str(control.preview_path(tiny_xseg, MODEL_NAME)))
    assert preview.shape == (4 * TINY["resolution"], 3 * TINY["resolution"], 3)
    r = TINY["resolution"]
    mask_column = preview[:, r : 2 * r]
    assert (mask_column[..., 0] == mask_column[..., 2]).all()  # the middle column is the grey mask


def test_labelled_faces_are_the_only_ones_trained_on(workspace, tmp_path):
    from facelab.io.faceimage import list_faces, read_meta, write_meta

    labelled = list_faces(workspace / "data_dst/aligned")[:2]
    for path in labelled:
        meta = read_meta(path)
        meta.mask_polygons = {"exclude": [[[10.0, 10.0], [60.0, 10.0], [60.0, 60.0]]]}
        write_meta(path, meta)
    result = train_xseg(tmp_path / "xseg", _faces(workspace), TINY, max_iterations=2)
    assert not result.generic and result.faces == 2
    with pytest.raises(WorkspaceError, match="no face .* has mask polygons"):
        train_xseg(tmp_path / "other", [workspace / "data_src/aligned"], TINY, max_iterations=1, generic=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkspaceError, match="no faces to train"):
        train_xseg(tmp_path / "other", [tmp_path / "empty"], TINY, max_iterations=1)


def test_cli_train_in_the_workspace(workspace, run_cli):
    run = run_cli("xseg", "train", "-w", str(workspace), "--iterations", "2", "--resolution", "64", "--channels", "4",
                  "--batch-size", "2", "--yes")
    assert run.code == 0, run.err
    assert "generic start" in run.out and "0 → 2" in run.out
    assert checkpoint.find_models(workspace / "model/xseg") == [MODEL_NAME]
    bad = run_cli("xseg", "train", "-w", str(workspace), "--model-dir", str(workspace / "other"), "--resolution", "100",
                  "--yes")
    assert bad.code == 2 and "multiple of 32" in bad.err


def test_training_page_shows_xseg(workspace, tiny_xseg):
    """The web UI's Training page reads XSeg's status, history and preview at ?folder=model/xseg."""
    import shutil

    import httpx

    from facelab.web.server import start

    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    running = start(workspace, "127.0.0.1", 0, "test-token-0123456789", background=True)
    try:
        base = running.url.split("/?")[0]
        shown = httpx.get(base + "/api/training/status?folder=model/xseg",
                          headers={"X-Facelab-Token": "test-token-0123456789"}).json()
    finally:
        running.stop()
    assert shown["models"] == [MODEL_NAME] and shown["model"] == MODEL_NAME
    assert shown["iteration"] == TINY_ITERATIONS and shown["running"] is False
    assert shown["preview"]["path"] == "model/xseg/XSeg_preview.png"
