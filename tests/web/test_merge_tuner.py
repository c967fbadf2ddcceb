"""The merge tuner in a real browser on the demo workspace: the form comes from MERGE_OPTIONS, moving a slider or
changing the mode changes the preview's pixels (only around the face), and the settings it saves are what
`facelab merge` reads and uses."""

from __future__ import annotations

import base64
import json
import re
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from facelab.cli import cli
from facelab.io.faceimage import read_meta
from facelab.merge.options import (
    MERGE_OPTIONS,
    SETTINGS_FILE,
    FrameRange,
    load_settings_file,
)
from facelab.errors import OptionError
from facelab.web.pages.merge import PREVIEW_JPEG_QUALITY, Tuner, range_options, render_preview, with_range
from facelab.workspace import Workspace

SHOWN = "document.getElementById('preview').dataset.request === previewRequest()"


def open_tuner(page, base_url):
    page.goto(base_url + "/merge")
    page.wait_for_function("Number(document.getElementById('preview').dataset.renders) >= 1")
    page.wait_for_function(SHOWN)


def preview_pixels(page) -> np.ndarray:
    """The preview image's bytes, fetched from the page's own object URL and decoded (H, W, 3) BGR."""
    data = page.evaluate("""async () => {
        const bytes = new Uint8Array(await (await fetch(document.getElementById('preview').src)).arrayBuffer());
        let text = ''; for (const b of bytes) text += String.fromCharCode(b);
        return btoa(text); }""")
    image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def face_box(workspace, frame_stem: str, shape) -> tuple[slice, slice]:
    """Rows and columns around the frame's dst face: twice its landmarks' box, where merging may change pixels."""
    meta = read_meta(workspace / "data_dst" / "aligned" / f"{frame_stem}_0.jpg")
    pts = np.asarray(meta.source_landmarks)
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) + 16
    return (slice(max(int(cy - half), 0), min(int(cy + half), shape[0])),
            slice(max(int(cx - half), 0), min(int(cx + half), shape[1])))


def changed_pixels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 8


def drag_slider(page, selector: str, fraction: float) -> None:
    """Drag a range input's thumb from its middle to ``fraction`` of its width with the mouse."""
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
    page.mouse.up()


def test_preview_changes_when_a_slider_moves_or_the_mode_changes(page, base_url, workspace, screenshot):
    open_tuner(page, base_url)
    fields = page.locator("#options .field").evaluate_all("rows => rows.map(r => r.dataset.option)")
    assert fields == [o.name for o in MERGE_OPTIONS]  # generated from the declaration, none hand-written
    assert page.locator("#opt-mode option").count() == len(MERGE_OPTIONS[0].choices)
    assert page.get_attribute('label[for="opt-erode"]', "title").startswith("erode: Shrink")
    assert re.search(r"render \d+ ms on the server", page.inner_text("#timing"))
    first = preview_pixels(page)
    # The original through the preview's JPEG encoder: unchanged 8×8 blocks then decode to the same pixels.
    original = cv2.imread(str(workspace / "data_dst" / "00001.png"))
    original = cv2.imdecode(cv2.imencode(".jpg", original, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])[1], 1)
    assert first.shape == original.shape == (360, 640, 3)
    rows, cols = face_box(workspace, "00001", first.shape)
    outside = np.ones(first.shape[:2], bool)
    outside[rows, cols] = False
    assert changed_pixels(first, original)[rows, cols].sum() > 500  # the face was swapped...
    assert changed_pixels(first, original)[outside].sum() == 0      # ...and nothing else

    drag_slider(page, '.field[data-option="erode"] input[type=range]', 0.85)
    assert int(page.input_value("#opt-erode")) > 200
    page.wait_for_function(SHOWN)
    eroded = preview_pixels(page)
    changed = changed_pixels(first, eroded)
    assert changed[rows, cols].sum() > 300, "moving the erode slider did not change the preview"
    assert changed[outside].sum() == 0
    assert int(re.search(r"erode (\d+) px", page.inner_text("#info")).group(1)) > 0

    page.select_option("#opt-mode", "raw-mask")  # the mask on black: most of the frame changes
    page.wait_for_function(SHOWN)
    mask_view = preview_pixels(page)
    assert changed_pixels(eroded, mask_view).mean() > 0.5
    assert page.locator('.field[data-option="mode"]').get_attribute("class") == "field changed"
    page.select_option("#opt-mode", "overlay")
    page.wait_for_function(SHOWN)
    screenshot(page, "merge")
    page.click("#preview")  # the keys belong to the page, not to the mode list
    page.keyboard.press(".")  # next frame
    page.wait_for_function(SHOWN)
    assert "frame 2 (00002.png" in page.inner_text("#frame-label")


def test_saved_settings_are_what_facelab_merge_reads_and_uses(page, base_url, workspace, screenshot):
    open_tuner(page, base_url)
    page.fill("#opt-blur", "40")
    page.select_option("#opt-mode", "overlay")
    page.click("#save")
    page.wait_for_function("document.getElementById('saved-message').textContent.includes('global')")
    settings = workspace / "model" / SETTINGS_FILE
    glob, ranges = load_settings_file(settings)
    assert glob["blur"] == 40 and glob["mode"] == "overlay" and glob["erode"] == 0
    assert set(glob) == {o.name for o in MERGE_OPTIONS} and ranges == ()

    page.check('input[name="scope"][value="range"]')
    page.fill("#first", "3")
    page.fill("#last", "5")
    page.fill("#opt-erode", "30")
    page.click("#save")
    page.wait_for_function("document.getElementById('saved-message').textContent.includes('frames 3')")
    glob_after, ranges = load_settings_file(settings)
    assert glob_after == glob
    assert ranges == (FrameRange(3, 5, {"erode": 30}),)  # only what differs from the global values
    assert '"erode": 30' in page.inner_text("#saved")

    page.reload()  # values persist: the form opens with what was saved
    page.wait_for_function(SHOWN)
    assert page.input_value("#opt-blur") == "40" and page.input_value("#opt-mode") == "overlay"
    assert page.input_value("#opt-erode") == "0"  # frame 1 is outside the range
    page.click("#next")
    page.click("#next")
    page.click("#revert")  # frame 3: the range's value
    page.wait_for_function("document.getElementById('opt-erode').value === '30'")
    page.wait_for_function(SHOWN)
    screenshot(page, "merge_saved")

    # `facelab merge` uses them: overlay + blur 40 everywhere, erode only on frames 3-5.
    run = CliRunner().invoke(cli, ["merge", "--workspace", str(workspace), "--yes", "--overwrite", "--debug"])
    assert run.exit_code == 0, run.output
    assert "Using saved merge settings" in run.output
    faces = dict(re.findall(r"^(\d{5})\.png: 1 face.*\n\s+face 0: (.*)$", run.output, flags=re.MULTILINE))
    assert len(faces) == 15
    assert all("mode overlay" in line and "blur 0 px" not in line for line in faces.values())
    eroded = {stem for stem, line in faces.items() if "erode 0 px" not in line}
    assert eroded == {"00003", "00004", "00005"}


def test_bad_values_and_ranges_are_refused(base_url, workspace):
    import httpx

    from .conftest import TOKEN

    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        bad = client.post("/api/merge/preview", json={"model": "SAE", "frame": "00001.png", "options": {"blur": 999}})
        assert bad.status_code == 400 and "out of range" in bad.json()["error"]
        bad = client.post("/api/merge/save", json={"options": {}, "first": 5, "last": 2})
        assert bad.status_code == 400 and "empty" in bad.json()["error"]
        same = client.post("/api/merge/save", json={"options": {}, "first": 1, "last": 2})
        assert same.status_code == 400 and "equals the global" in same.json()["error"]
        assert not (workspace / "model" / SETTINGS_FILE).exists()
        missing = client.post("/api/merge/preview", json={"model": "SAE", "frame": "../x.png", "options": {}})
        assert missing.status_code == 400


def test_range_helpers():
    assert range_options({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"b": 2}
    old = (FrameRange(1, 2, {"blur": 1}), FrameRange(3, 4, {"blur": 2}))
    assert with_range(old, FrameRange(1, 2, {"blur": 9})) == (old[1], FrameRange(1, 2, {"blur": 9}))
    assert json.loads(json.dumps(with_range((), FrameRange(5, 6, {"mode": "overlay"}))[0].options)) == {"mode": "overlay"}


def jpeg_pixels(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def tiny_xseg(demo_workspace, tmp_path_factory):
    """A generic-start XSeg at its smallest, trained 4 iterations on the demo's dst faces (seconds on a CPU)."""
    import torch

    from facelab.xseg.trainer import train_xseg

    folder = tmp_path_factory.mktemp("tuner_xseg") / "xseg"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net on a shared 2-core machine: one thread is faster
    try:
        train_xseg(folder, [demo_workspace / "data_dst/aligned"], {"resolution": 64, "channels": 4, "batch_size": 4,
                                                                   "save_minutes": 600.0}, max_iterations=4, seed=0)
    finally:
        torch.set_num_threads(threads)
    return folder


def test_seg_masks_use_the_workspace_xseg_loaded_once(workspace, tiny_xseg, monkeypatch):
    from facelab.xseg.segmenter import Segmenter

    tuner = Tuner(Workspace(workspace))
    seg_prd = {"mode": "overlay", "mask": "seg-prd"}
    with pytest.raises(OptionError, match="needs a trained XSeg"):  # none trained yet: says what to do
        render_preview(tuner, "SAE", "00001.png", seg_prd)

    shutil.copytree(tiny_xseg, workspace / "model" / "xseg")
    loads = []
    real_load = Segmenter.load
    monkeypatch.setattr(Segmenter, "load", classmethod(lambda cls, *a, **k: loads.append(a) or real_load(*a, **k)))
    hull, _ = render_preview(tuner, "SAE", "00001.png", {"mode": "overlay", "mask": "dst"})
    assert loads == []  # no seg-* mask: XSeg stays unloaded
    by_prd, headers = render_preview(tuner, "SAE", "00001.png", seg_prd)
    assert "mask seg-prd" in json.loads(headers["X-Merge-Info"])[0]
    by_dst, headers = render_preview(tuner, "SAE", "00002.png", {"mode": "overlay", "mask": "seg-dst", "erode": 20})
    assert "mask seg-dst" in json.loads(headers["X-Merge-Info"])[0]
    assert len(loads) == 1  # once for every seg-* preview after it
    rows, cols = face_box(workspace, "00001", jpeg_pixels(hull).shape)
    assert changed_pixels(jpeg_pixels(hull), jpeg_pixels(by_prd))[rows, cols].sum() > 100  # its own mask, not the hull


def test_super_resolution_runs_once_per_frame_however_the_other_options_move(workspace, monkeypatch):
    from facelab.merge.enhance import FaceEnhancer

    try:
        FaceEnhancer()
    except OptionError as err:
        pytest.skip(f"the optional superres extra is not installed (./run.sh extras): {err.message}")
    calls = []
    real_enhance = FaceEnhancer.enhance
    monkeypatch.setattr(FaceEnhancer, "enhance", lambda self, face, size: calls.append(size) or
                        real_enhance(self, face, size))
    tuner = Tuner(Workspace(workspace))
    sharp = {"mode": "overlay", "mask": "dst", "super_resolution": True}
    first, _ = render_preview(tuner, "SAE", "00001.png", sharp)
    assert len(calls) == 1  # the frame's one face
    eroded, _ = render_preview(tuner, "SAE", "00001.png", {**sharp, "erode": 60, "colour_transfer": "none"})
    plain, _ = render_preview(tuner, "SAE", "00001.png", {**sharp, "super_resolution": False})
    assert len(calls) == 1, "moving other options ran super resolution again"
    rows, cols = face_box(workspace, "00001", jpeg_pixels(first).shape)
    assert changed_pixels(jpeg_pixels(first), jpeg_pixels(eroded))[rows, cols].sum() > 100
    assert changed_pixels(jpeg_pixels(first), jpeg_pixels(plain))[rows, cols].sum() > 0  # the kept SR face is used
    render_preview(tuner, "SAE", "00002.png", sharp)
    assert len(calls) == 2  # another frame: its own super resolution
