"""The manual extraction page in a real browser on the demo workspace: the frames a user marked for a manual fix
are exactly the ones walked, a square placed with the mouse and wheel becomes a valid aligned face on Enter, and
Space / `,` / `.` move through the frames."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest

from facelab.errors import OptionError
from facelab.extract.manual_place import extract_settings, parse_box
from facelab.extract.options import EXTRACT_OPTIONS
from facelab.extract.runner import LOG_NAME, read_log
from facelab.io.faceimage import list_faces, read_face, read_meta
from facelab.workspace import Workspace

from .conftest import TOKEN

SETTLED = "() => { const c = document.getElementById('frame'); return c.dataset.landmarks === '68' " \
          "&& c.dataset.liveBox === c.dataset.box; }"


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def square_size(page) -> int:
    return int(page.inner_text("#square").split()[1])


def place_square(page, rect) -> None:
    """Move the mouse to the centre of ``rect`` (frame px) and wheel the square to about its longer side."""
    box = page.locator("#frame").bounding_box()
    width = int(page.get_attribute("#frame", "data-width"))
    scale = box["width"] / width
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    page.mouse.move(box["x"] + cx * scale, box["y"] + cy * scale, steps=4)
    target = max(rect[2] - rect[0], rect[3] - rect[1])
    for _ in range(40):
        size = square_size(page)
        if abs(size - target) <= 0.06 * target:
            break
        page.mouse.wheel(0, -100 if size < target else 100)
        page.wait_for_function(f"() => !document.getElementById('square').textContent.includes(' {size} px')")
    else:
        pytest.fail(f"the wheel did not bring the square to {target:.0f} px (at {square_size(page)})")
    page.wait_for_function(SETTLED)


def test_manual_fix_walks_the_marked_frames_and_enter_writes_aligned_faces(workspace, page, base_url, screenshot):
    ws = Workspace(workspace)
    aligned = ws.aligned("dst")
    # The user deleted one debug image (seed: "delete the aligned_debug images of bad frames") and moved the
    # faces of another frame out of aligned/.
    (ws.aligned_debug / "00008.jpg").unlink()
    kept = workspace.parent / "kept_by_user"
    kept.mkdir()
    shutil.move(str(aligned / "00012_0.jpg"), kept / "00012_0.jpg")
    before_8 = read_meta(aligned / "00008_0.jpg")
    before_12 = read_meta(kept / "00012_0.jpg")

    page.goto(base_url + "/manual")
    page.wait_for_selector("#frames li")
    assert page.locator("#frames li .name").all_inner_texts() == ["00008.png", "00012.png"]
    assert page.inner_text("#position") == "frame 1 of 2"
    assert "debug image deleted" in page.inner_text("#frame-reason")
    page.wait_for_selector("#frame[data-frame='00008.png']")
    shown = page.locator("#frame").bounding_box()  # fitted to the window with one scale: 640 × 360 stays 16:9
    assert shown["width"] > 640 and abs(shown["width"] / 640 * 360 - shown["height"]) < 1.0, shown

    place_square(page, before_8.source_rect)
    screenshot(page, "manual")
    page.keyboard.press("Enter")
    page.wait_for_selector("#frame[data-frame='00012.png']")
    assert page.inner_text("#position") == "frame 2 of 2"
    assert "no face in aligned/" in page.inner_text("#frame-reason")
    assert "accepted → 00008_0.jpg (1 old moved to trash)" in page.locator("#frames li").nth(0).inner_text()
    trashed = list((ws.frames("dst") / "aligned_trash").glob("manual-*/00008_0.jpg"))
    assert len(trashed) == 1 and read_meta(trashed[0]).detector == "retinaface"  # the old face, kept
    assert (ws.aligned_debug / "00008.jpg").is_file()

    place_square(page, before_12.source_rect)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Last frame done')")
    assert "2 accepted, 0 skipped of 2" in page.inner_text("#status")

    for name, before in (("00008", before_8), ("00012", before_12)):
        image, meta = read_face(aligned / f"{name}_0.jpg")
        assert meta.detector == "manual" and meta.source_filename == f"{name}.png"
        assert image.shape == (128, 128, 3) and meta.image_size == 128 and meta.face_type == "full"
        assert meta.landmarks.shape == (68, 2) and ((meta.landmarks > 0) & (meta.landmarks < 128)).all()
        # the face is where the man's face is: the user's square sits on RetinaFace's box, the landmarks agree
        assert iou(meta.source_rect, before.source_rect) > 0.5
        centre_shift = np.linalg.norm(meta.source_landmarks.mean(0) - before.source_landmarks.mean(0))
        assert centre_shift < 0.1 * (before.source_rect[2] - before.source_rect[0]), centre_shift
    log = read_log(aligned)
    assert log["manual"] == {"00008.png": 1, "00012.png": 1} and {"00008.png", "00012.png"} <= set(log["debug_images"])
    assert len(list_faces(aligned)) == 15

    page.reload()  # nothing needs work any more
    page.wait_for_selector("#empty:not([hidden])")
    assert "Nothing to fix on dst" in page.inner_text("#empty")
    screenshot(page, "manual-nothing-to-fix")
    every = httpx.get(base_url + "/api/manual/frames?side=dst&mode=all", headers={"X-Facelab-Token": TOKEN}).json()
    assert {f["name"] for f in every["frames"] if f["reason"] == "placed by hand earlier (1)"} == {"00008.png",
                                                                                                 "00012.png"}


def test_space_skips_and_comma_dot_move_between_frames(workspace, page, base_url, screenshot):
    aligned = Workspace(workspace).aligned("dst")
    files_before = {p.name: p.stat().st_mtime_ns for p in list_faces(aligned)}
    page.goto(base_url + "/manual?mode=all")
    page.wait_for_selector("#frame[data-frame='00001.png']")
    assert page.locator("#frames li").count() == 15 and page.inner_text("#position") == "frame 1 of 15"

    page.keyboard.press(".")
    page.wait_for_selector("#frame[data-frame='00002.png']")
    assert page.inner_text("#position") == "frame 2 of 15"
    page.keyboard.press(",")
    page.keyboard.press(",")  # already at the first frame: stays
    page.wait_for_selector("#frame[data-frame='00001.png']")
    assert page.inner_text("#position") == "frame 1 of 15"

    page.keyboard.press(" ")
    page.wait_for_selector("#frame[data-frame='00002.png']")
    assert page.locator("#frames li").nth(0).locator(".what").inner_text() == "skipped"
    page.keyboard.press(",")
    page.wait_for_selector("#frame[data-frame='00001.png']")
    assert page.inner_text("#frame-done") == "skipped"

    page.keyboard.press("a")
    assert page.inner_text("#precision") == "precision (A)"
    box = page.locator("#frame").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    x0 = float(page.get_attribute("#frame", "data-box").split(",")[0])
    page.mouse.move(box["x"] + 140, box["y"] + 100)  # the square moves a quarter of that in precision mode
    moved = (float(page.get_attribute("#frame", "data-box").split(",")[0]) - x0) * box["width"] / 640
    assert moved == pytest.approx(10, abs=0.2), moved
    size = square_size(page)
    page.mouse.wheel(0, -100)
    page.wait_for_function(f"() => !document.getElementById('square').textContent.includes(' {size} px')")
    assert size < square_size(page) <= size * 1.03  # a fine wheel step
    page.keyboard.press("h")
    assert page.locator("#help").is_hidden()
    page.keyboard.press("h")
    assert page.locator("#help").is_visible()
    assert {p.name: p.stat().st_mtime_ns for p in list_faces(aligned)} == files_before  # skipping wrote nothing


def test_live_landmarks_endpoint_and_clear_errors(workspace, base_url):
    found = read_meta(Workspace(workspace).aligned("dst") / "00004_0.jpg")  # RetinaFace's face on this frame
    rect = found.source_rect
    side = max(rect[2] - rect[0], rect[3] - rect[1])
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    square = [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]
    body = {"side": "dst", "frame": "00004.png", "boxes": [square], "face_type": "full", "image_size": 128}
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}, timeout=30) as client:
        live = client.post("/api/manual/landmarks", json=body).json()
        points = np.array(live["landmarks"])
        assert points.shape == (68, 2) and np.array(live["square"]).shape == (4, 2)
        # the same face as the automatic pass found: mean point distance under 5 % of the face's width
        assert np.linalg.norm(points - found.source_landmarks, axis=1).mean() < 0.05 * (rect[2] - rect[0])
        assert live["preview"].startswith("data:image/jpeg;base64,")
        assert client.post("/api/manual/landmarks", json=body).json()["ms"] < 500  # models loaded: live speed

        def error(response) -> str:
            assert response.status_code == 400, response.text
            return response.json()["text"]

        assert "no such side 'left'" in error(client.get("/api/manual/frames?side=left"))
        assert "no frame images in data_src/" in error(client.get("/api/manual/frames?side=src"))
        assert "no such mode" in error(client.get("/api/manual/frames?side=dst&mode=some"))
        outside = {**body, "frame": "../data_dst/00004.png"}
        assert "no frame '../data_dst/00004.png'" in error(client.post("/api/manual/landmarks", json=outside))
        assert "at least 8 px" in error(client.post("/api/manual/accept", json={**body, "boxes": [[10, 10, 12, 12]]}))
        assert "no square given" in error(client.post("/api/manual/accept", json={**body, "boxes": []}))
        assert "--face-type got 'toe'" in error(client.post("/api/manual/accept", json={**body, "face_type": "toe"}))
        far = {**body, "boxes": [[0, 0, 1e8, 1e8]]}
        assert "lies outside the 640×360 frame" in error(client.post("/api/manual/accept", json=far))
        assert "must be a JSON object" in error(client.post("/api/manual/accept", content=b"[1]",
                                                            headers={"Content-Type": "application/json"}))
    # the errors wrote nothing
    assert read_meta(Workspace(workspace).aligned("dst") / "00004_0.jpg").detector == "retinaface"


@pytest.mark.parametrize("box", [[0, 0, float("nan"), 50], [0, 0, 50], ["0", 0, 50, 50], [True, 0, 50, 50],
                                 [0, 0, 1e30, 50], [-1e6, 0, 50, 50], [10, 10, 12, 60], "0,0,50,50", None])
def test_a_square_must_be_four_finite_numbers_on_the_frame(box):
    assert parse_box([-20, 300, 60.5, 380], (640, 360)) == (-20.0, 300.0, 60.5, 380.0)  # partly off the frame: fine
    with pytest.raises(OptionError):
        parse_box(box, (640, 360))


def test_the_last_runs_settings_are_the_defaults_unless_the_log_holds_valid_ones(tmp_path):
    defaults = {o.name: o.default for o in EXTRACT_OPTIONS}
    assert extract_settings(tmp_path) == {"face_type": defaults["face_type"], "image_size": defaults["image_size"]}
    for settings, expected in (({"face_type": "head", "image_size": 128}, ("head", 128)),
                               ({"face_type": "head", "image_size": 99999}, (defaults["face_type"], defaults["image_size"])),
                               ({"face_type": "toe", "image_size": "big"}, (defaults["face_type"], defaults["image_size"]))):
        (tmp_path / LOG_NAME).write_text(json.dumps({"settings": settings}))
        assert tuple(extract_settings(tmp_path).values()) == expected, settings
