"""The faceset page in a real browser on the demo workspace: the grid, sorting, trash and restore."""

from __future__ import annotations

import shutil
import struct

import httpx
import pytest

from facelab.errors import OutputError
from facelab.faceset.sort import SORT_METHODS
from facelab.io.faceimage import list_faces, read_meta
from facelab.web.folders import face_folders
from facelab.web.pages.faceset import PREVIEW_SIZE, methods_json, restore

from .conftest import TOKEN

SRC = "data_src/aligned"


def open_page(page, base_url, folder=SRC, trash=False):
    page.goto(f"{base_url}/faceset#folder={folder}&trash={int(trash)}")
    page.wait_for_function("document.querySelector('#count').textContent.includes(' in ')")


def thumbs_loaded(page) -> None:
    """Wait until every thumbnail in view has decoded (lazy ones further down may still be pending)."""
    page.wait_for_function("[...document.querySelectorAll('#grid img')].slice(0, 8).every(i => i.complete && "
                           "i.naturalWidth > 0)")


def grid_names(page) -> list[str]:
    return page.locator("#grid .face figcaption").all_inner_texts()


def shown_number(value: float) -> str:
    """A yaw as the page prints it: rounded to 0.1 by the server, then written by JavaScript (-12.0 → "-12")."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def names(folder) -> list[str]:
    return [p.name for p in list_faces(folder)]


def test_grid_shows_exactly_the_faces_of_data_src_aligned(page, base_url, workspace, screenshot):
    open_page(page, base_url)
    expected = names(workspace / SRC)
    assert len(expected) > 20
    assert grid_names(page) == expected
    assert page.inner_text("#count") == f"{len(expected)} faces in {SRC}"
    folders = page.locator("#folder option").evaluate_all("els => els.map(e => e.value)")
    assert folders[:2] == [SRC, "data_dst/aligned"]
    assert "data_dst/aligned_debug" not in folders and "data_dst" not in folders  # no metadata there
    # Thumbnails load lazily: every img asks for it; the first ones (in view) have decoded.
    assert page.locator("#grid img[loading=lazy]").count() == len(expected)
    thumbs_loaded(page)
    # Every sort method of the registry is offered, with its help.
    assert page.locator("#method option").evaluate_all("els => els.map(e => e.value)") == SORT_METHODS.names()
    page.select_option("#method", "final")
    assert page.locator("#method-options input[data-option=final_count]").input_value() == "2000"
    assert "keep the best N" in page.inner_text("#method-help")
    # Hovering shows the face's pose, frame and detector score; a click selects (shown in the screenshot).
    page.locator("#grid .face").nth(1).click()
    page.locator("#grid .face").nth(3).click(modifiers=["Control"])
    first = page.locator("#grid .face").first
    first.hover()
    meta = read_meta(workspace / SRC / expected[0])
    shown = first.locator(".meta").inner_text()
    assert f"yaw {shown_number(meta.yaw)}°" in shown and meta.source_filename in shown and "score" in shown
    screenshot(page, "faceset_grid")


def test_sort_by_yaw_from_the_page_renames_the_folder_in_yaw_order(page, base_url, workspace):
    folder = workspace / SRC
    before = [read_meta(p).yaw for p in list_faces(folder)]
    assert before != sorted(before), "the demo faces should not already be in yaw order"
    open_page(page, base_url)
    page.select_option("#method", "face-yaw")
    page.click("#sort")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Sorted')")
    assert "error" not in (page.get_attribute("#status", "class") or "")
    paths = list_faces(folder)
    after = [read_meta(p).yaw for p in paths]
    assert after == sorted(after) and sorted(after) == sorted(before)
    assert [p.name for p in paths] == [f"{i:05d}.jpg" for i in range(len(before))]
    assert grid_names(page) == [p.name for p in paths]
    # The grid reloaded with new cache tokens: the first cell shows the face now called 00000.jpg.
    first = page.locator("#grid .face").first
    first.hover()
    assert f"yaw {shown_number(after[0])}°" in first.locator(".meta").inner_text()


def _break_pixels(path) -> None:
    """Fill the JPEG's Huffman tables with garbage: its metadata still reads, its pixels no longer decode."""
    data = bytearray(path.read_bytes())
    pos = 2
    while data[pos + 1] != 0xDA:  # up to the start of scan
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xC4:
            data[pos + 4:pos + 2 + length] = b"\xff" * (length - 2)
        pos += 2 + length
    path.write_bytes(bytes(data))


def test_a_sort_names_the_faces_it_skipped_and_a_failing_one_shows_one_error_line(page, base_url, workspace):
    folder = workspace / SRC
    shutil.copy(workspace / "data_dst" / "00001.png", folder / "zz_not_a_face.png")  # a frame: no face metadata
    open_page(page, base_url)
    page.select_option("#method", "origname")
    page.click("#sort")
    page.wait_for_selector("#status.error")
    assert "1 unreadable face(s) left as they are: zz_not_a_face.png" in page.inner_text("#status")
    assert (folder / "zz_not_a_face.png").is_file()  # left as it is, under its name
    # No face's pixels decode: the sort job fails and the page shows its one-line error; nothing moved.
    for path in folder.glob("*.jpg"):
        _break_pixels(path)
    before = names(folder)
    page.select_option("#method", "blur")
    page.click("#sort")
    page.wait_for_function("document.querySelector('#status').textContent.includes('could be read')")
    message = page.inner_text("#status")
    assert f"none of the {len(before)} faces could be read" in message and "\n" not in message
    assert "error" in page.get_attribute("#status", "class")
    assert names(folder) == before
    assert page.is_enabled("#sort")


def test_select_trash_and_restore(page, base_url, workspace, screenshot):
    folder, trash = workspace / SRC, workspace / "data_src" / "aligned_trash"
    all_names = names(folder)
    open_page(page, base_url)
    cells = page.locator("#grid .face")
    # Shift-click selects a range, Ctrl+A everything, Esc nothing.
    cells.nth(1).click()
    cells.nth(4).click(modifiers=["Shift"])
    assert page.inner_text("#selected") == "4 selected"
    page.keyboard.press("Control+a")
    assert page.inner_text("#selected") == f"{len(all_names)} selected"
    page.keyboard.press("Escape")
    assert page.inner_text("#selected") == ""
    # Click + Ctrl-click two faces, Delete: they move to aligned_trash and leave the grid.
    cells.nth(0).click()
    cells.nth(2).click(modifiers=["Control"])
    assert page.locator("#grid .face.selected").count() == 2
    chosen = [all_names[0], all_names[2]]
    page.keyboard.press("Delete")
    page.wait_for_function(f"document.querySelectorAll('#grid .face').length === {len(all_names) - 2}")
    assert sorted(p.name for p in trash.iterdir()) == sorted(chosen)
    assert names(folder) == [n for n in all_names if n not in chosen]
    assert not set(chosen) & set(grid_names(page))
    assert page.inner_text("#trash-count") == "2"
    # The trash view shows them; Restore moves one back.
    page.click("#view-trash")
    page.wait_for_function("document.querySelector('#count').textContent.includes('aligned_trash')")
    assert grid_names(page) == sorted(chosen)
    thumbs_loaded(page)
    screenshot(page, "faceset_trash")
    page.locator("#grid .face").nth(0).click()
    page.click("#restore")
    page.wait_for_function("document.querySelectorAll('#grid .face').length === 1")
    assert (folder / chosen[0]).is_file() and not (trash / chosen[0]).exists()
    assert "Restored" in page.inner_text("#status")
    # A face of the same name is in the folder again: the restore is refused and nothing is overwritten.
    clash = folder / chosen[1]
    shutil.copy(folder / all_names[1], clash)
    held = clash.read_bytes()
    page.locator("#grid .face").nth(0).click()
    page.keyboard.press("r")
    page.wait_for_selector("#status.error")
    assert f"{chosen[1]} already in aligned again" in page.inner_text("#status")
    assert clash.read_bytes() == held and (trash / chosen[1]).is_file()
    assert grid_names(page) == [chosen[1]]


def test_double_click_enlarges_a_face_with_landmarks(page, base_url, workspace, screenshot):
    first = names(workspace / SRC)[0]
    size = max(read_meta(workspace / SRC / first).image_size, PREVIEW_SIZE)  # small faces are enlarged
    open_page(page, base_url)
    page.locator("#grid .face").first.dblclick()
    page.wait_for_function(f"document.querySelector('#preview-image').naturalWidth === {size}")
    assert page.inner_text("#preview-name") == first
    page.keyboard.press("l")
    page.wait_for_function("document.querySelector('#preview-image').src.includes('landmarks=1')")
    page.wait_for_function(f"document.querySelector('#preview-image').naturalWidth === {size}")
    screenshot(page, "faceset_preview")
    page.keyboard.press("Escape")
    assert page.locator("#preview").is_hidden()


def test_api_refuses_paths_and_names_outside_the_folder(base_url, workspace):
    headers = {"X-Facelab-Token": TOKEN}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        assert client.get("/api/faceset/faces", params={"folder": "../"}).status_code == 403
        sneaky = client.post("/api/faceset/trash", json={"folder": SRC, "names": ["../../model/SAE_preview.png"]})
        assert sneaky.status_code == 400 and "not in this folder" in sneaky.json()["error"]
        unknown = client.post("/api/faceset/sort", json={"folder": SRC, "method": "face-yw"})
        assert unknown.status_code == 400 and "did you mean 'face-yaw'" in unknown.json()["text"]
        bad = client.post("/api/faceset/sort", json={"folder": SRC, "method": "final", "options": {"final_count": 0}})
        assert bad.status_code == 400 and "--final-count got 0, out of range" in bad.json()["text"]
    assert (workspace / "model" / "SAE_preview.png").is_file()


def test_restore_moves_nothing_when_any_name_clashes(tmp_path):
    folder, trash = tmp_path / "aligned", tmp_path / "aligned_trash"
    folder.mkdir(), trash.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (trash / name).write_bytes(name.encode())
    (folder / "b.jpg").write_bytes(b"new b")
    with pytest.raises(OutputError, match="b.jpg already in aligned"):
        restore(folder, [trash / "a.jpg", trash / "b.jpg"])
    assert sorted(p.name for p in trash.iterdir()) == ["a.jpg", "b.jpg"] and (folder / "b.jpg").read_bytes() == b"new b"
    assert restore(folder, [trash / "a.jpg"]) == [folder / "a.jpg"] and (folder / "a.jpg").read_bytes() == b"a.jpg"


def test_folders_and_methods_come_from_the_workspace_and_registry(demo_workspace):
    found = [p.relative_to(demo_workspace.resolve()).as_posix() for p in face_folders(demo_workspace)]
    assert found == [SRC, "data_dst/aligned"]
    assert [m["name"] for m in methods_json()] == SORT_METHODS.names()
    final = next(m for m in methods_json() if m["name"] == "final")
    assert [o["name"] for o in final["options"]] == ["final_count"]
