"""The mask editor page in a real browser: polygons drawn with the mouse land in the face's metadata (pixels
untouched), the wheel walks the edit history, and the keys save, confirm, skip and walk the folder."""

from __future__ import annotations

import struct

import cv2
import httpx
import numpy as np

from facelab.io.faceimage import list_faces, read_meta
from facelab.train.samples import face_mask

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
