"""The training page in a real browser: the last save when no trainer runs, and a real trainer (in a thread)
saved, re-previewed and stopped from the page's keys; the workspace's XSeg listed beside the swap models. Also
`facelab train --ui`."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from facelab.train import checkpoint, control
from facelab.workspace import Workspace

from ..conftest import TINY_XSEG_ITERATIONS
from .conftest import TOKEN

DEMO_ITERATIONS = 4  # the demo workspace's SAE (tests/web/conftest.py)


def _saved_iteration(model_dir: Path, name: str = "SAE") -> int:
    return json.loads(checkpoint.ModelFiles(model_dir, name).history.read_text())["iteration"]


def _preview_src(page) -> str:
    return page.get_attribute("#preview", "src") or ""


def _wait_new_preview(page, old: str) -> str:
    """Wait until the page's <img> points at another preview file version and has loaded it."""
    page.wait_for_function("old => { const i = document.getElementById('preview'); "
                           "return i.getAttribute('src') && i.getAttribute('src') !== old && i.complete "
                           "&& i.naturalWidth > 0; }", arg=old, timeout=60000)
    return _preview_src(page)


def test_page_shows_the_last_save_when_no_trainer_runs(page, base_url, workspace, screenshot):
    model_dir = Workspace(workspace).model
    # A second model in the folder brings up the model picker (options + history are all the page reads).
    saved = checkpoint.ModelFiles(model_dir, "SAE")  # its last complete save
    history = json.loads(saved.history.read_text())
    (model_dir / "Other_history.json").write_text(json.dumps({**history, "iteration": 1234,
                                                              "loss_src": [0.5], "loss_dst": [0.25]}))
    shutil.copy(saved.options, model_dir / "Other_options.json")
    os.utime(model_dir / "Other_history.json", (1e9, 1e9))  # older: the page opens the latest model, SAE
    page.goto(base_url + "/training")
    expect(page.locator("#state")).to_have_text("stopped")
    expect(page.locator("#iteration")).to_have_text(str(DEMO_ITERATIONS))
    expect(page.locator("#note")).to_contain_text("last saved state")
    page.wait_for_function("() => { const i = document.getElementById('preview'); "
                           "return i.complete && i.naturalWidth === 90 + 4 * 64; }")
    assert "SAE_preview.png" in _preview_src(page)
    for button in ("#save", "#stop", "#refresh"):
        expect(page.locator(button)).to_be_disabled()
        assert "No trainer is running" in page.get_attribute(button, "title")
    expect(page.locator("#pickerLabel")).to_be_visible()
    screenshot(page, "training-stopped")
    page.select_option("#model", "Other")
    expect(page.locator("#iteration")).to_have_text("1234")
    expect(page.locator("#lossDst")).to_have_text("0.2500")
    # The API refuses requests nobody would answer.
    refused = httpx.post(base_url + "/api/training/request", json={"action": "save", "model": "SAE"},
                         headers={"X-Facelab-Token": TOKEN})
    assert refused.status_code == 400 and "no trainer is running" in refused.json()["error"]
    assert not (model_dir / "SAE_request.json").exists()
    # A status that says running but has not been updated for long: the trainer hung or was killed.
    status = control.read_status(model_dir, "SAE")
    control.status_path(model_dir, "SAE").write_text(json.dumps({**status, "running": True, "updated_at": 1e9}))
    shown = httpx.get(base_url + "/api/training/status?model=SAE", headers={"X-Facelab-Token": TOKEN}).json()
    assert shown["running"] is False and shown["stopped_by"] == "trainer gone"
    assert shown["iteration"] == DEMO_ITERATIONS and shown["models"] == ["Other", "SAE"]
    assert [m["folder"] for m in shown["listed"]] == ["model", "model"]  # no XSeg trained in this workspace


def test_keys_save_refresh_and_stop_a_real_trainer(page, base_url, workspace, screenshot):
    from facelab.train.trainer import train_model

    ws = Workspace(workspace)
    model_dir = ws.model
    preview = control.preview_path(model_dir, "SAE")
    stop = threading.Event()
    outcome: dict = {}

    def train() -> None:
        try:
            outcome["result"] = train_model(model_dir, ws.aligned("src"), ws.aligned("dst"), "SAE",
                                            {"workers": 0, "write_preview_history": True}, max_seconds=120,
                                            device="cpu", should_stop=stop.is_set)
        except Exception as exc:  # noqa: BLE001 — reported by the test below
            outcome["error"] = exc

    thread = threading.Thread(target=train, name="test-trainer", daemon=True)
    thread.start()
    try:
        page.goto(base_url + "/training")
        expect(page.locator("#state")).to_have_text("running", timeout=30000)
        expect(page.locator("#save")).to_be_enabled()
        first = _wait_new_preview(page, "")
        page.wait_for_function(f"() => Number(document.getElementById('iteration').textContent) > {DEMO_ITERATIONS}")

        page.keyboard.press("p")  # a new preview of the current weights, nothing saved
        refreshed = _wait_new_preview(page, first)
        assert _saved_iteration(model_dir) == DEMO_ITERATIONS
        assert not (model_dir / "preview_history").exists()

        page.keyboard.press("s")  # a regular save: weights, preview, loss graph, preview history
        saved = _wait_new_preview(page, refreshed)
        assert _saved_iteration(model_dir) > DEMO_ITERATIONS
        assert float(saved.split("v=")[1]) == pytest.approx(preview.stat().st_mtime)
        kept = sorted((model_dir / "preview_history").glob("SAE_*.png"))
        assert [p.name for p in kept] == [f"SAE_{_saved_iteration(model_dir):08d}.png"]
        expect(page.locator("#lossSrc")).not_to_have_text("–")
        page.wait_for_function("() => Number(document.getElementById('ms').textContent) > 0")
        screenshot(page, "training-running")

        page.keyboard.press("h")  # browse the preview history, then back to live
        expect(page.locator("#historyLabel")).to_have_text(f"1 / 1: {kept[0].name}")
        assert kept[0].name in _preview_src(page)
        page.keyboard.press("h")
        expect(page.locator("#historyBar")).to_be_hidden()

        page.keyboard.press("Enter")  # save and stop, as the seed's Enter
        thread.join(timeout=30)
        assert not thread.is_alive() and "error" not in outcome, outcome
        result = outcome["result"]
        assert result.stopped_by == "user"
        assert _saved_iteration(model_dir) == result.iteration
        expect(page.locator("#state")).to_have_text("stopped")
        expect(page.locator("#iteration")).to_have_text(str(result.iteration))
        expect(page.locator("#note")).to_contain_text("last run stopped: user")
        expect(page.locator("#save")).to_be_disabled()
        assert not (model_dir / "SAE_request.json").exists()
    finally:
        stop.set()
        thread.join(timeout=60)


def test_train_ui_prints_a_url_with_a_token_and_stops_the_server_after(run_cli, workspace):
    run = run_cli("train", "-w", str(workspace), "--ui", "--ui-port", "0", "--iterations", "2", "--yes",
                  "--device", "cpu", "--workers", "0")
    assert run.code == 0, run.err
    found = re.search(r"http://127\.0\.0\.1:(\d+)/training\?token=([\w-]{20,})", run.out)
    assert found, run.out
    assert run.out.index(found.group(0)) < run.out.index("Saved SAE at iteration")
    assert f"iteration {DEMO_ITERATIONS + 2}" in run.out and "stopped: iterations" in run.out
    status = control.read_status(Workspace(workspace).model, "SAE")
    assert status["running"] is False and status["stopped_by"] == "iterations"
    with pytest.raises(httpx.ConnectError):  # the UI server stopped with the training
        httpx.get(found.group(0), timeout=2)


def test_the_xseg_is_listed_beside_the_workspace_models(page, base_url, workspace, tiny_xseg, screenshot):
    from facelab.xseg.trainer import train_xseg

    model_dir = Workspace(workspace).model
    shutil.copytree(tiny_xseg, model_dir / "xseg")
    for path in (model_dir / "xseg").rglob("*"):
        os.utime(path, (1e9, 1e9))  # older than the SAE: the page opens the SAE, the latest written
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        shown = client.get("/api/training/status").json()
        assert shown["models"] == ["SAE", "XSeg"] and shown["model"] == "SAE" and not shown["segmenter"]
        assert shown["listed"] == [{"name": "SAE", "folder": "model", "segmenter": False},
                                   {"name": "XSeg", "folder": "model/xseg", "segmenter": True}]
        xseg = client.get("/api/training/status", params={"model": "XSeg"}).json()
        assert xseg["model_folder"] == "model/xseg" and xseg["segmenter"] is True
        assert xseg["iteration"] == TINY_XSEG_ITERATIONS and xseg["running"] is False
        assert xseg["preview"]["path"] == "model/xseg/XSeg_preview.png"
        wrong = client.get("/api/training/status", params={"model": "XSeg", "model_folder": "model"})
        assert wrong.status_code == 400 and "SAE, XSeg" in wrong.json()["fix"]
        refused = client.post("/api/training/request", json={"action": "save", "model": "XSeg",
                                                             "model_folder": "model/xseg"})
        assert refused.status_code == 400 and "no trainer is running for XSeg" in refused.json()["error"]

    page.goto(base_url + "/training")
    expect(page.locator("#modelName")).to_have_text("SAE")
    expect(page.locator("#pickerLabel")).to_be_visible()
    page.select_option("#model", "model/xseg/XSeg")
    expect(page.locator("#modelName")).to_contain_text("face segmenter (model/xseg)")
    expect(page.locator("#iteration")).to_have_text(str(TINY_XSEG_ITERATIONS))
    expect(page.locator("#lossDstLabel")).to_have_text("1 − IoU")
    expect(page.locator("#rows")).to_contain_text("predicted mask")
    page.wait_for_function("() => { const i = document.getElementById('preview'); "
                           "return i.complete && i.naturalWidth === 3 * 64; }")  # face | mask | overlay
    assert "model/xseg/XSeg_preview.png" in _preview_src(page)
    screenshot(page, "training-xseg")
    page.select_option("#model", "model/SAE")
    expect(page.locator("#iteration")).to_have_text(str(DEMO_ITERATIONS))

    # A running `facelab xseg train` answers the page's keys like any trainer.
    page.select_option("#model", "model/xseg/XSeg")
    outcome: dict = {}

    def train() -> None:
        try:
            outcome["result"] = train_xseg(model_dir / "xseg", [Workspace(workspace).aligned("dst")], {}, minutes=2.0)
        except Exception as exc:  # noqa: BLE001 — reported by the test below
            outcome["error"] = exc

    thread = threading.Thread(target=train, name="test-xseg-trainer", daemon=True)
    thread.start()
    try:
        expect(page.locator("#state")).to_have_text("running", timeout=30000)
        page.keyboard.press("Enter")  # save and stop
        thread.join(timeout=60)
        assert not thread.is_alive() and "error" not in outcome, outcome
        assert outcome["result"].stopped_by == "save and stop"
        expect(page.locator("#state")).to_have_text("stopped")
        expect(page.locator("#iteration")).to_have_text(str(outcome["result"].iteration))
        expect(page.locator("#note")).to_contain_text("last run stopped: save and stop")
    finally:
        thread.join(timeout=120)
