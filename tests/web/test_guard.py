"""The UI's door against other pages and bad requests, on the real server over the demo workspace: JSON POSTs from
its own origin only, its own Host only (DNS rebinding), one cookie per port, and a 400 with the reason (never a
500) for malformed input."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from facelab.web.guard import Address, cookie_name, split_host
from facelab.web.server import start

from .conftest import TOKEN

FACE_FOLDER = "data_src/aligned"


def _port(base_url: str) -> int:
    return urlsplit(base_url).port


def _trash_body(workspace) -> tuple[dict, object]:
    face = sorted((workspace / FACE_FOLDER).glob("*.jpg"))[0]
    return {"folder": FACE_FOLDER, "names": [face.name]}, face


@contextlib.contextmanager
def _logged_in(base_url: str):
    """A client holding the cookie, as a browser tab does after opening the printed URL."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get(f"/?token={TOKEN}").status_code == 303
        yield client


@pytest.mark.parametrize("headers, status, reason", [
    ({"Content-Type": "text/plain"}, 415, "only JSON requests"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "only JSON requests"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "only JSON requests"),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403, "may not change"),
    ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403, "may not change"),
    ({"Content-Type": "application/json", "Origin": "null"}, 403, "may not change"),
    ({"Content-Type": "application/json", "Referer": "http://localhost:1/faceset"}, 403, "may not change"),
    ({"Content-Type": "application/json"}, 403, "without Origin or Referer"),
])
def test_a_post_with_the_cookie_from_another_page_is_refused(base_url, workspace, headers, status, reason):
    body, face = _trash_body(workspace)
    with _logged_in(base_url) as client:
        refused = client.post("/api/faceset/trash", content=json.dumps(body), headers=headers)
        assert refused.status_code == status and reason in refused.text, refused.text
        assert face.is_file()  # nothing moved
        # The same request from the UI's own page goes through (the guard is what refused it).
        for own in (f"http://127.0.0.1:{_port(base_url)}", f"http://localhost:{_port(base_url)}"):
            assert client.post("/api/faceset/restore", json={"folder": FACE_FOLDER, "names": ["none.jpg"]},
                               headers={"Origin": own}).status_code == 400  # past the guard: "not in this folder"
        moved = client.post("/api/faceset/trash", json=body, headers={"Referer": f"{base_url}/faceset"})
        assert moved.status_code == 200 and not face.exists()


def test_only_this_uis_host_is_answered(base_url):
    port = _port(base_url)
    token = {"X-Facelab-Token": TOKEN}
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert httpx.get(base_url + "/api/info", headers={**token, "Host": host}).status_code == 200, host
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", f"rebind.127.0.0.1.nip.io:{port}",
                 f"127.0.0.1:{port}@evil"):
        refused = httpx.get(base_url + "/api/info", headers={**token, "Host": host})
        assert refused.status_code == 403 and "not this facelab UI's address" in refused.text, host
    # Also before the token: a rebound page never gets to try one.
    assert "not this facelab UI's address" in httpx.get(base_url + f"/?token={TOKEN}",
                                                        headers={"Host": f"evil.example:{port}"}).text


def test_addresses_of_a_loopback_and_an_everywhere_ui():
    loop = Address.of("127.0.0.1", 7777)
    assert loop.allows("127.0.0.1:7777") and loop.allows("[::1]:7777") and not loop.allows("10.0.0.5:7777")
    assert loop.allows_origin("http://localhost:7777") and not loop.allows_origin("https://localhost:7777")
    everywhere = Address.of("0.0.0.0", 7777)  # reached by the machine's IP: an IP literal cannot be rebound
    assert everywhere.allows("10.0.0.5:7777") and not everywhere.allows("evil.example:7777")
    assert not everywhere.allows("10.0.0.5:7778")
    assert Address.of("192.168.1.9", 80).allows("192.168.1.9")  # the default port left out
    assert split_host("[::1]:7777") == ("[::1]", 7777) and split_host("a:b") == ("a", None)


def test_two_uis_on_two_ports_keep_their_own_cookies(workspace):
    first = start(workspace, "127.0.0.1", 0, "token-one-0123456789", background=True)
    second = start(workspace, "127.0.0.1", 0, "token-two-0123456789", background=True)
    try:
        ports = [_port(ui.url) for ui in (first, second)]
        with httpx.Client(timeout=30) as browser:  # one cookie jar for 127.0.0.1, as in a browser
            for ui in (first, second):
                assert browser.get(ui.url).status_code == 303
            assert {c.name for c in browser.cookies.jar} == {cookie_name(p) for p in ports}
            for ui in (first, second):  # logging into the second did not log the first out
                assert browser.get(ui.url.split("/?")[0] + "/api/info").status_code == 200
    finally:
        first.stop(), second.stop()


MALFORMED = [
    ("GET", "/thumb/data_dst/00001.png?size=abc", None, "size must be a whole number"),
    ("GET", "/thumb/data_dst/00001.png?size=1e300", None, "size must be a whole number"),
    ("GET", "/files/data_dst/00001.png%00.txt", None, "malformed path"),
    ("GET", "/files/" + "a" * 5000, None, "malformed path"),
    ("GET", "/api/faceset/faces?folder=" + "d/" * 2500, None, "malformed path"),
    ("GET", "/api/masks/face?path=data_dst%2F%00", None, "malformed path"),
    ("GET", "/api/merge/saved?frame=abc", None, "must be a whole number"),
    ("GET", "/api/manual/faces?side=dst&frame=" + "x" * 5000 + ".png", None, "no frame"),
    ("POST", "/api/merge/save", b"[" * 100_000 + b"]" * 100_000, "nested more than"),
    ("POST", "/api/merge/save", b'{"a":' * 20 + b"1" + b"}" * 20, "nested more than"),
    ("POST", "/api/merge/save", b'{"options": {}, "first": 1e300}', "out of range"),
    ("POST", "/api/merge/save", b'{"options": {}, "first": 1e999}', "out of range"),
    ("POST", "/api/merge/save", b'{"options": {"blur": NaN}}', "NaN, which is not a number"),
    ("POST", "/api/merge/save", b'{"options": {"blur": -Infinity}}', "-Infinity, which is not a number"),
    ("POST", "/api/merge/save", b'{"first": ' + b"9" * 5000 + b"}", "out of range"),
    ("POST", "/api/merge/save", b'{"options": 5}', "'options' must be a JSON object"),
    ("POST", "/api/merge/save", b'{"options": [1, 2]}', "'options' must be a JSON object"),
    ("POST", "/api/merge/save", b'{"options": {}, "first": "x"}', "must be a whole number"),
    ("POST", "/api/merge/preview", b'{"model": "../../etc", "frame": "00001.png"}', "model in this workspace"),
    ("POST", "/api/merge/preview", b'{"model": ["SAE"]}', "'model' must be a string"),
    ("POST", "/api/faceset/sort", b'{"folder": "data_src/aligned", "method": "final", "options": "x"}',
     "'options' must be a JSON object"),
    ("POST", "/api/faceset/sort", b'{"folder": "data_src/aligned", "method": 5}', "'method' must be a string"),
    ("POST", "/api/faceset/trash", b'{"folder": "data_src/aligned\\u0000", "names": []}', "malformed path"),
    ("POST", "/api/faceset/trash", b'{"folder": 7, "names": []}', "choose an aligned folder"),
    ("POST", "/api/masks/save", b'{"path": {"a": 1}}', "no face given"),
    ("POST", "/api/manual/landmarks", b'{"side": "dst", "frame": "00001.png", "boxes": [[0, 0, 1e8, 1e8]]}',
     "lies outside"),
    ("POST", "/api/manual/accept", b'{"side": "dst", "frame": "00001.png", "boxes": "x"}', "no square given"),
    ("POST", "/api/manual/accept", b'{"side": "dst", "frame": "00001.png", "boxes": [[0, 0, 50, 50]],'
     b' "image_size": true}', "--image-size got True"),
    ("POST", "/api/training/request", b'{"action": "save", "folder": 3}', "'folder' must be a string"),
    ("POST", "/api/merge/save", b"\xff\xfe\x00", "not valid JSON"),
    ("POST", "/api/merge/save", b"", "not valid JSON"),
    ("POST", "/api/merge/save", b'"text"', "must be a JSON object"),
]


@pytest.mark.parametrize("method, path, body, reason", MALFORMED, ids=[f"{m} {p[:50]}" for m, p, _, _ in MALFORMED])
def test_malformed_input_is_a_400_with_the_reason(base_url, method, path, body, reason):
    headers = {"X-Facelab-Token": TOKEN, "Content-Type": "application/json"}
    answer = httpx.request(method, base_url + path, content=body, headers=headers, timeout=60)
    assert answer.status_code == 400, answer.text[:300]
    assert reason in answer.json()["text"] and "\n" not in answer.json()["text"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(base_url):
    from facelab.web.forms import MAX_BODY

    answer = httpx.post(base_url + "/api/merge/save", content=b" " * (MAX_BODY + 1),
                        headers={"X-Facelab-Token": TOKEN, "Content-Type": "application/json"})
    assert answer.status_code == 400 and "larger than" in answer.json()["error"]


ATTACK = """<!doctype html><script>
async function attack(url, body) {
  await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                    headers: {"Content-Type": "text/plain"}, body});
  try {  // JSON across origins needs a CORS preflight, which the UI never grants
    await fetch(url, {method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body});
  } catch (e) {}
  const form = document.createElement("form");
  form.method = "POST"; form.action = url; form.enctype = "text/plain";
  const field = document.createElement("input");
  field.name = body; form.append(field); document.body.append(form);
  form.submit();
}
</script>"""


def test_a_page_on_another_port_of_127_0_0_1_cannot_trash_a_face(page, base_url, workspace, tmp_path):
    """In a real browser, logged into the UI: a page served from 127.0.0.1 at another port is "same site", so the
    browser sends the UI's SameSite=strict cookie along; the guard must still refuse."""
    (tmp_path / "attack").mkdir()
    (tmp_path / "attack" / "index.html").write_text(ATTACK)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "attack"))  # noqa: E731
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    body, face = _trash_body(workspace)
    try:
        refused = []
        page.on("response", lambda r: refused.append(r.status) if "/api/faceset/trash" in r.url else None)
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/index.html")
        with page.expect_navigation():
            page.evaluate("([url, body]) => attack(url, body)", [base_url + "/api/faceset/trash", json.dumps(body)])
        assert refused and all(status in (403, 415) for status in refused), refused
        assert face.is_file()
    finally:
        other.shutdown()


def test_the_body_limits_leave_room_for_the_largest_real_request():
    """The mask editor's biggest save (MAX_POINTS polygon points at two decimals) passes the size, depth and number
    bounds of the POST helper."""
    from facelab.web.forms import MAX_BODY, parse_json_object
    from facelab.web.pages.masks import MAX_POINTS

    polygon = [[2047.99, 2047.99]] * (MAX_POINTS // 2)
    body = json.dumps({"path": "data_dst/aligned/00001_0.jpg", "polygons": {"include": [polygon], "exclude": [polygon]},
                       "confirm": True}).encode()
    assert len(body) < MAX_BODY
    assert parse_json_object(body)["polygons"]["include"][0][0] == [2047.99, 2047.99]
