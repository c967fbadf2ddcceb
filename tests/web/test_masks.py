"""The mask editor page in a real browser: polygons drawn with the mouse land in the face's metadata (pixels
untouched), the wheel walks the edit history, and the keys save, confirm, skip and walk the folder. With a
trained XSeg, its prediction is laid over each face and the folder can be walked least sure first."""

from __future__ import annotations

import shutil
import struct
import time

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from facelab.io.faceimage import list_faces, read_meta
from facelab.train.samples import face_mask

from ..conftest import TINY_XSEG_ITERATIONS
from .conftest import TOKEN

FOLDER = "data_dst/aligned"
PREVIEW_DONE = "() => !ed.preview.running && !ed.preview.wanted && document.getElementById('mask').complete"


def pixel_bytes(data: bytes) -> bytes:
    """A JPEG file without its facelab metadata segments (APP10 tagged b"facelab\\0"): everything else, tables
    and the entropy-coded scan included, must stay byte for byte when only the metadata is rewritten."""
    assert data[:2] == b"\xff\xd8"
    out, pos = [data[:2]], 2
    while data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9):
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos : pos + 2 + length]
        if not (data[pos + 1] == 0xEA and segment[4:12] == b"facelab\0"):
            out.append(segment)
        pos += 2 + length
    return b"".join(out) + data[pos:]


def open_editor(page, base_url, face: str) -> None:
    page.goto(base_url + "/masks")
    page.click(f'#folders button[data-folder="{FOLDER}"]')
    wait_for_face(page, face)


def wait_for_face(page, face: str) -> None:
    page.wait_for_function("(p) => document.getElementById('face').dataset.path === p", arg=face)


def on_canvas(page, x: float, y: float, size: int) -> tuple[float, float]:
    """Page coordinates of the aligned-face point (x, y) (origin at the top-left pixel's corner)."""
    box = page.locator("#face").bounding_box()
    return box["x"] + x * box["width"] / size, box["y"] + y * box["height"] / size


def click_points(page, points, size: int, button: str) -> None:
    for x, y in points:
        page.mouse.click(*on_canvas(page, x, y, size), button=button)


def close_polygon(page, size: int) -> None:
    page.mouse.click(*on_canvas(page, size / 2, size / 2, size), button="middle")


def wait_history(page, text: str) -> None:
    page.wait_for_function("(t) => document.getElementById('history').textContent.startsWith(t)", arg=text)


def wait_saves(page, count: int) -> None:
    page.wait_for_function("(n) => document.body.dataset.saves === String(n)", arg=count)


def assert_polygons(stored: list, drawn: list, tolerance: float = 1.0) -> None:
    assert len(stored) == len(drawn)
    for got, want in zip(stored, drawn):
        np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), atol=tolerance)


def test_polygons_drawn_with_the_mouse_are_stored_by_x(page, base_url, workspace, screenshot):
    faces = list_faces(workspace / FOLDER)
    path = faces[0]
    before, meta_before = path.read_bytes(), read_meta(path)
    size = meta_before.image_size
    assert meta_before.mask_polygons == {}
    open_editor(page, base_url, f"{FOLDER}/{path.name}")

    include = [(20.0, 30.0), (100.0, 25.0), (110.0, 70.0), (60.0, 110.0)]
    exclude = [(45.0, 45.0), (80.0, 48.0), (62.0, 75.0)]
    click_points(page, include, size, "left")
    close_polygon(page, size)
    click_points(page, exclude, size, "right")
    close_polygon(page, size)
    wait_history(page, "edit 9 of 9")
    page.wait_for_function(PREVIEW_DONE)
    assert page.locator("#keys").inner_text().count("aligned_") == 2  # the help names both target folders
    screenshot(page, "masks")

    page.keyboard.press("x")
    wait_saves(page, 1)
    wait_for_face(page, f"{FOLDER}/{faces[1].name}")
    after = path.read_bytes()
    meta = read_meta(path)
    assert set(meta.mask_polygons) == {"include", "exclude"}
    assert_polygons(meta.mask_polygons["include"], [include])
    assert_polygons(meta.mask_polygons["exclude"], [exclude])
    assert pixel_bytes(after) == pixel_bytes(before)  # only the metadata changed
    assert after != before
    np.testing.assert_array_equal(meta.landmarks, meta_before.landmarks)
    assert meta.source_filename == meta_before.source_filename
    assert read_meta(faces[1]).mask_polygons == {}  # the next face was only shown


def test_the_wheel_undoes_and_redoes_edits(page, base_url, workspace):
    faces = list_faces(workspace / FOLDER)
    size = read_meta(faces[0]).image_size
    page.goto(f"{base_url}/masks#{FOLDER}")  # the folder in the URL opens it directly
    wait_for_face(page, f"{FOLDER}/{faces[0].name}")
    points = [(30.0, 30.0), (90.0, 30.0), (60.0, 90.0), (10.0, 120.0)]
    click_points(page, points, size, "left")
    wait_history(page, "edit 4 of 4")
    page.mouse.wheel(0, 120)  # down: undo the 4th point
    wait_history(page, "edit 3 of 4")
    close_polygon(page, size)  # a new edit drops the redo
    wait_history(page, "edit 4 of 4")
    page.mouse.wheel(0, 120)
    wait_history(page, "edit 3 of 4")
    page.mouse.wheel(0, 120)
    wait_history(page, "edit 2 of 4")
    page.mouse.wheel(0, -120)  # up: redo
    wait_history(page, "edit 3 of 4")
    page.keyboard.down("Control")
    page.mouse.wheel(0, 120)  # Ctrl: to the start of the history
    wait_history(page, "edit 0 of 4")
    page.mouse.wheel(0, -120)  # and to its end
    wait_history(page, "edit 4 of 4")
    page.keyboard.up("Control")

    page.keyboard.press("x")
    wait_saves(page, 1)
    polys = read_meta(faces[0]).mask_polygons
    assert_polygons(polys["include"], [points[:3]])
    assert polys["exclude"] == []


def test_e_confirms_w_skips_and_keys_walk_the_folder(page, base_url, workspace):
    faces = list_faces(workspace / FOLDER)
    names = [p.name for p in faces]
    size = read_meta(faces[0]).image_size
    open_editor(page, base_url, f"{FOLDER}/{names[0]}")
    triangle = [(20.0, 20.0), (100.0, 20.0), (60.0, 100.0)]
    click_points(page, triangle, size, "left")
    close_polygon(page, size)

    page.keyboard.press("e")  # save → aligned_confirmed/
    wait_saves(page, 1)
    wait_for_face(page, f"{FOLDER}/{names[1]}")
    confirmed = workspace / "data_dst/aligned_confirmed" / names[0]
    assert confirmed.is_file() and not faces[0].exists()
    assert_polygons(read_meta(confirmed).mask_polygons["include"], [triangle])

    second = faces[1].read_bytes()
    page.keyboard.press("w")  # skip → aligned_skipped/, nothing written
    wait_for_face(page, f"{FOLDER}/{names[2]}")
    skipped = workspace / "data_dst/aligned_skipped" / names[1]
    assert skipped.read_bytes() == second and not faces[1].exists()

    left = names[2:]  # the folder now: 13 faces
    third = faces[2].read_bytes()
    click_points(page, triangle, size, "right")
    page.keyboard.press("c")  # skip in place: the drawing is dropped, nothing written
    wait_for_face(page, f"{FOLDER}/{left[1]}")
    assert faces[2].read_bytes() == third
    page.keyboard.press("Shift+C")
    wait_for_face(page, f"{FOLDER}/{left[11]}")
    page.keyboard.press("q")
    wait_for_face(page, f"{FOLDER}/{left[10]}")
    page.keyboard.press("Shift+Z")
    wait_for_face(page, f"{FOLDER}/{left[0]}")
    assert page.inner_text("#position").startswith(f"1 / {len(left)}")

    zoom = page.inner_text("#zoom")
    page.keyboard.press("-")
    page.wait_for_function("(z) => document.getElementById('zoom').textContent !== z", arg=zoom)
    assert page.locator("#face").bounding_box()["width"] < 640

    page.mouse.click(*on_canvas(page, 50, 50, size))
    page.keyboard.press("Escape")  # unsaved edits: the first Esc only warns
    page.wait_for_function("() => document.getElementById('status').textContent.includes('unsaved')")
    assert page.locator("#editor").is_visible()
    page.keyboard.press("Escape")
    page.wait_for_selector('#folders button[data-folder="data_dst/aligned_confirmed"]')
    assert page.locator("#editor").is_hidden()
    shown = page.locator("#folders button").evaluate_all("(bs) => bs.map((b) => b.dataset.folder)")
    assert shown[:2] == ["data_src/aligned", "data_dst/aligned"]
    assert {"data_dst/aligned_confirmed", "data_dst/aligned_skipped"} <= set(shown)
    assert "data_dst" not in shown and "data_dst/aligned_debug" not in shown  # frames have no face metadata


def test_the_preview_is_the_mask_training_uses(ui, base_url, workspace):
    face = list_faces(workspace / FOLDER)[3]
    meta = read_meta(face)
    include = [[[5.0, 5.0], [60.0, 8.0], [30.0, 50.0]]]
    exclude = [[[40.0, 60.0], [90.0, 60.0], [90.0, 110.0], [40.0, 110.0]]]
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        body = {"path": f"{FOLDER}/{face.name}", "polygons": {"include": include, "exclude": exclude}}
        response = client.post("/api/masks/preview", json=body)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        shown = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
        expected = face_mask(meta.landmarks, meta.image_size, include, exclude)
        np.testing.assert_array_equal(shown, expected)
        assert shown[20, 20] == 255 and shown[80, 60] == 0  # inside the include / the exclude polygon

        hull_only = client.post("/api/masks/preview", json={**body, "polygons": {}})
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(hull_only.content, np.uint8), -1),
                                      face_mask(meta.landmarks, meta.image_size))

        before = face.read_bytes()
        for bad in ({"include": [[[1, 1], [2, 2]]]}, {"include": [[[1, "a"], [2, 2], [3, 3]]]}, {"outline": []},
                    [[1, 2]]):
            answer = client.post("/api/masks/save", json={**body, "polygons": bad})
            assert answer.status_code == 400 and answer.json()["error"], bad
        assert face.read_bytes() == before  # refused saves write nothing
        assert client.post("/api/masks/skip", json={"path": "../outside.jpg"}).status_code == 403
        assert client.post("/api/masks/save", json={"path": "data_dst/00001.png", "polygons": {}}).status_code == 400
        assert client.get("/api/masks/faces", params={"folder": "data_dst/../.."}).status_code == 403


def test_moving_never_overwrites(ui, base_url, workspace):
    name = "aligned_confirmed"
    before = list_faces(workspace / FOLDER)[0].read_bytes()
    face = list_faces(workspace / FOLDER)[0]
    (workspace / "data_dst" / name).mkdir()
    (workspace / "data_dst" / name / face.name).write_bytes(b"older face")
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        answer = client.post("/api/masks/save", json={"path": f"{FOLDER}/{face.name}", "polygons": {},
                                                      "confirm": True})
    assert answer.status_code == 400 and "already holds" in answer.json()["error"]
    assert (workspace / "data_dst" / name / face.name).read_bytes() == b"older face"
    assert face.read_bytes() == before  # refused before anything was written


# -- the segmenter's prediction and the least-sure-first order -----------------------------------------------


def test_uncertainty_is_zero_when_sure_and_one_for_coin_tosses():
    from facelab.web.pages.masks import uncertainty

    sure, tosses = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2, 2), 0.5)
    half = np.array([[[0.0, 0.5], [1.0, 0.5]]])
    np.testing.assert_allclose(uncertainty(np.concatenate([sure, tosses, half])), [0.0, 1.0, 0.5])
    assert uncertainty(np.array([[[0.1]]]))[0] == pytest.approx(uncertainty(np.array([[[0.9]]]))[0])  # symmetric


def _segmenter_says(xseg_folder, face):
    """What the XSeg predicts for a face file, computed here: (uint8 mask, uncertainty)."""
    from facelab.io.faceimage import read_face
    from facelab.web.pages.masks import uncertainty
    from facelab.xseg.segmenter import Segmenter

    prob = Segmenter.load(xseg_folder).predict(read_face(face)[0][None])
    return np.rint(prob[0] * 255).astype(np.uint8), float(uncertainty(prob)[0])


def _finished_job(client, job: int) -> dict:
    for _ in range(600):
        state = client.get(f"/api/jobs/{job}").json()
        if state["finished"]:
            assert state["error"] is None, state["error"]
            return state["result"]
        time.sleep(0.1)
    raise AssertionError("the order job did not finish in 60 s")


def test_the_overlay_endpoint_returns_the_segmenters_prediction(ui, base_url, workspace, tiny_xseg):
    face = list_faces(workspace / FOLDER)[2]
    rel = f"{FOLDER}/{face.name}"
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        # No segmenter yet: a clear one-line answer, the same from every endpoint that needs it.
        info = client.get("/api/masks/segmenter").json()
        assert info["trained"] is False and "No trained XSeg in model/xseg" in info["message"]
        assert "facelab xseg train" in info["message"]
        for answer in (client.get("/api/masks/prediction", params={"path": rel}),
                       client.post("/api/masks/order", json={"folder": FOLDER})):
            assert answer.status_code == 400 and "no trained XSeg" in answer.json()["error"]
            assert "facelab xseg train" in answer.json()["fix"]

        shutil.copytree(tiny_xseg, workspace / "model/xseg")
        info = client.get("/api/masks/segmenter").json()
        assert info["trained"] is True and info["iteration"] == TINY_XSEG_ITERATIONS
        answer = client.get("/api/masks/prediction", params={"path": rel})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        shown = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_UNCHANGED)
        want, score = _segmenter_says(workspace / "model/xseg", face)
        assert shown.shape == (read_meta(face).image_size,) * 2 and shown.dtype == np.uint8
        assert np.abs(shown.astype(int) - want).max() <= 1  # the same net, the same face
        assert float(answer.headers["X-Facelab-Uncertainty"]) == pytest.approx(score, abs=1e-4)
        assert client.get("/api/masks/prediction", params={"path": rel}).content == answer.content  # cached

        # A retrained XSeg (new weights) is loaded again: its prediction replaces the cached one.
        from facelab.xseg.trainer import train_xseg

        train_xseg(workspace / "model/xseg", [workspace / FOLDER], {}, max_iterations=TINY_XSEG_ITERATIONS + 3)
        again = client.get("/api/masks/prediction", params={"path": rel})
        assert client.get("/api/masks/segmenter").json()["iteration"] == TINY_XSEG_ITERATIONS + 3
        retrained, _ = _segmenter_says(workspace / "model/xseg", face)
        assert np.abs(cv2.imdecode(np.frombuffer(again.content, np.uint8), -1).astype(int) - retrained).max() <= 1
        assert again.content != answer.content

        # Applied to the face (`facelab xseg apply`), that mask is what training uses: the page is told so.
        from facelab.xseg.apply import apply_folder
        from facelab.xseg.segmenter import Segmenter

        assert client.get("/api/masks/face", params={"path": rel}).json()["xseg_applied"] is False
        apply_folder(workspace / FOLDER, Segmenter.load(workspace / "model/xseg"))
        assert client.get("/api/masks/face", params={"path": rel}).json()["xseg_applied"] is True

        assert client.get("/api/masks/prediction", params={"path": "../outside.jpg"}).status_code == 403
        assert client.get("/api/masks/prediction", params={"path": "data_dst/00001.png"}).status_code == 400


def test_least_sure_first_is_the_order_of_the_uncertainty_score(ui, base_url, workspace, tiny_xseg):
    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    faces = list_faces(workspace / FOLDER)
    (workspace / FOLDER / "broken.jpg").write_bytes(faces[0].read_bytes()[:400])  # a damaged face is left out
    with httpx.Client(base_url=base_url, headers={"X-Facelab-Token": TOKEN}) as client:
        started = client.post("/api/masks/order", json={"folder": FOLDER})
        assert started.status_code == 200, started.text
        result = _finished_job(client, started.json()["job"])
    assert [s["name"] for s in result["skipped"]] == ["broken.jpg"]
    assert sorted(result["faces"]) == [f"{FOLDER}/{p.name}" for p in faces]
    ours = {f"{FOLDER}/{p.name}": _segmenter_says(workspace / "model/xseg", p)[1] for p in faces}
    np.testing.assert_allclose(result["scores"], [ours[f] for f in result["faces"]], atol=1e-4)
    assert result["scores"] == sorted(result["scores"], reverse=True)
    assert len(set(result["scores"])) > len(faces) // 2  # the scores tell the faces apart
    walked = [ours[f] for f in result["faces"]]
    assert all(a >= b - 1e-4 for a, b in zip(walked, walked[1:]))  # by our own scores, too: least sure first


def test_the_page_overlays_the_prediction_and_walks_least_sure_first(page, base_url, workspace, tiny_xseg,
                                                                      screenshot):
    faces = list_faces(workspace / FOLDER)
    first = f"{FOLDER}/{faces[0].name}"
    open_editor(page, base_url, first)
    expect(page.locator("#segmenter")).to_contain_text("No trained XSeg")
    expect(page.locator("#overlay")).to_be_disabled()
    page.keyboard.press("o")
    expect(page.locator("#status")).to_contain_text("facelab xseg train")
    screenshot(page, "masks-no-segmenter")

    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    open_editor(page, base_url, first)
    expect(page.locator("#segmenter")).to_have_text(f"XSeg at iteration {TINY_XSEG_ITERATIONS}")
    plain = page.locator("#face").screenshot()
    page.keyboard.press("o")
    page.wait_for_function("(p) => document.getElementById('face').dataset.overlay === p", arg=first)
    expect(page.locator("#overlay")).to_be_checked()
    expect(page.locator("#position")).to_contain_text("segmenter uncertainty")
    tinted = page.locator("#face").screenshot()
    assert _png(plain).shape == _png(tinted).shape and np.abs(_png(plain) - _png(tinted)).mean() > 3
    screenshot(page, "masks-overlay")

    page.select_option("#order", "unsure")
    page.wait_for_function("() => document.body.dataset.order === 'unsure'")
    order = page.evaluate("() => ed.faces")
    ours = {f"{FOLDER}/{p.name}": _segmenter_says(workspace / "model/xseg", p)[1] for p in faces}
    assert sorted(order) == sorted(ours)
    assert all(ours[a] >= ours[b] - 1e-4 for a, b in zip(order, order[1:]))  # least sure first
    wait_for_face(page, order[0])
    page.wait_for_function("(p) => document.getElementById('face').dataset.overlay === p", arg=order[0])
    expect(page.locator("#status")).to_contain_text("least sure first")
    screenshot(page, "masks-least-sure-first")
    page.keyboard.press("c")  # the keys walk the new order
    wait_for_face(page, order[1])
    page.keyboard.press("o")
    page.wait_for_function("() => !document.getElementById('face').dataset.overlay")
    expect(page.locator("#overlay")).not_to_be_checked()


def _png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(int)
