"""The UI server's guard: the token, paths outside the workspace, and the start page in a real browser."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from facelab.web.guard import cookie_name
from facelab.web.paths import PathRefused, inside_workspace

from .conftest import TOKEN


def test_requests_without_the_token_are_refused(base_url):
    for path in ("/", "/api/info", "/files/data_dst/00001.png", "/static/common.js", "/training"):
        assert httpx.get(base_url + path).status_code == 403, path
        assert httpx.get(base_url + path, headers={"X-Facelab-Token": "wrong"}).status_code == 403, path
        wrong = {cookie_name(urlsplit(base_url).port): TOKEN[:-1]}
        assert httpx.get(base_url + path, cookies=wrong).status_code == 403, path


def test_the_url_token_sets_a_cookie_that_opens_the_rest(base_url):
    with httpx.Client(base_url=base_url) as client:
        first = client.get(f"/?token={TOKEN}")
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert "httponly" in first.headers["set-cookie"].lower()
        assert first.headers["set-cookie"].startswith(f"{cookie_name(urlsplit(base_url).port)}={TOKEN};")
        kept = client.get(f"/training?model=SAE&token={TOKEN}&note=a%26b")
        assert kept.status_code == 303 and kept.headers["location"] == "/training?model=SAE&note=a%26b"
        info = client.get("/api/info")
        assert info.status_code == 200
        assert info.json()["counts"]["dst frames"] == 15
        frame = client.get("/files/data_dst/00001.png")
        assert frame.status_code == 200 and frame.content[:4] == b"\x89PNG"


@pytest.mark.parametrize("path", ["/files/../secret.txt", "/files/data_dst/../../secret.txt",
                                  "/files/%2e%2e/secret.txt", "/files/data_dst/%2E%2E/%2E%2E/secret.txt",
                                  "/thumb/..%2Fsecret.txt", "/files//etc/passwd"])
def test_paths_outside_the_workspace_are_refused(base_url, workspace, path):
    (workspace.parent / "secret.txt").write_text("not yours")
    response = httpx.get(base_url + path, headers={"X-Facelab-Token": TOKEN})
    assert response.status_code in (403, 404), response.status_code
    assert "not yours" not in response.text


def test_links_leading_out_of_the_workspace_are_refused(tmp_path):
    root = tmp_path / "ws"
    (root / "data_src").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("x")
    (root / "data_src" / "link.txt").symlink_to(tmp_path / "outside.txt")
    assert inside_workspace(root, "data_src") == (root / "data_src").resolve()
    for bad in ("data_src/link.txt", "../outside.txt", "/etc/passwd", "data_src/../../outside.txt"):
        with pytest.raises(PathRefused):
            inside_workspace(root, bad)


def test_start_page_lists_every_page(page, screenshot):
    page.wait_for_selector("#pages li")
    titles = page.locator("nav a:not(.brand)").all_inner_texts()
    assert titles == ["Manual extraction", "Mask editor", "Faceset", "Training", "Merge tuner", "Live"]
    assert "dst frames: 15" in page.inner_text("#counts")
    screenshot(page, "index")


def test_ui_command_refuses_a_missing_workspace(run_cli, tmp_path):
    result = run_cli("ui", str(tmp_path / "nowhere"), "--port", "0")
    assert result.code != 0
    assert "no such workspace folder" in result.err and "facelab workspace create" in result.err
