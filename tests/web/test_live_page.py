"""The Live page in a real browser: Chromium's fake camera plays the demo's dst frames (a y4m file), the page
streams them over the WebSocket and shows the swapped frames, which differ from the camera inside the face and
equal it outside, labelled "synthetic", with the frames/s measured in the page. The socket keeps the UI's door
(token, own Host and Origin) and answers hostile messages with an error instead of failing."""

from __future__ import annotations

import base64
import json
import shutil
import struct
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from facelab.errors import InputError
from facelab.io.faceimage import read_meta
from facelab.live.options import LIVE_OPTIONS
from facelab.merge.options import MERGE_OPTIONS, SETTINGS_FILE, save_settings
from facelab.provenance import read_label
from facelab.web.guard import cookie_name
from facelab.web.pages.live import (
    MAX_FRAME_BYTES,
    MERGE_NAMES,
    TRACKING_NAMES,
    decode_frame,
)

from .conftest import CHROMIUM, CHROMIUM_FLAGS, TOKEN

CHANGED = 20  # a pixel differs when a channel moves by more than this: JPEG re-encoding moves edges by less
SHOWN = "n => Number(document.getElementById('stats').dataset.shown) >= n"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """A YUV4MPEG2 file (what Chromium's fake camera plays) of (H, W, 3) uint8 BGR frames."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def dst_frames(workspace: Path) -> list[Path]:
    return sorted((workspace / "data_dst").glob("*.png"))


def face_region(workspace: Path, shape) -> np.ndarray:
    """(H, W) bool: around the dst face of every frame (twice its landmarks' box), where swapping may change
    pixels; the camera plays all the frames, so which one was sent is not known."""
    region = np.zeros(shape[:2], bool)
    for face in (workspace / "data_dst" / "aligned").glob("*_0.jpg"):
        pts = np.asarray(read_meta(face).source_landmarks)
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) + 16
        region[max(int(cy - half), 0):max(int(cy + half), 0), max(int(cx - half), 0):max(int(cx + half), 0)] = True
    return region


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > CHANGED


def assert_swapped_in_the_face_only(sent: np.ndarray, got: np.ndarray, workspace: Path) -> None:
    assert got.shape == sent.shape
    moved, face = changed(sent, got), face_region(workspace, sent.shape)
    assert moved[face].mean() > 0.05, "the face was not swapped"
    assert moved[~face].mean() < 0.002, f"{moved[~face].sum()} pixels changed outside the face"


# -- the page in Chromium with a fake camera --------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera_browser(demo_workspace, tmp_path_factory, playwright_driver):
    """Chromium whose camera plays the demo's dst frames, asking no permission."""
    video = tmp_path_factory.mktemp("camera") / "dst.y4m"
    write_y4m(video, [cv2.imread(str(p)) for p in dst_frames(demo_workspace)], fps=30)
    flags = CHROMIUM_FLAGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={video}"]
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def live_page(camera_browser, ui, base_url):
    context = camera_browser.new_context(viewport={"width": 1400, "height": 760})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(ui.url)
    tab.goto(base_url + "/live")
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def last_pair(page) -> tuple[bytes, bytes]:
    """The camera frame the page sent last and the swapped frame it drew for it, as sent (read at once: the
    page moves on to the next pair while the test looks)."""
    sent, got = page.evaluate("""async () => {
        const pair = live.last;
        const encode = async (blob) => {
            const bytes = new Uint8Array(await blob.arrayBuffer());
            let text = ''; for (const b of bytes) text += String.fromCharCode(b);
            return btoa(text); };
        return [await encode(pair.sent), await encode(pair.got)]; }""")
    return base64.b64decode(sent), base64.b64decode(got)


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_the_page_shows_the_camera_swapped_and_labelled_with_its_frame_rate(live_page, workspace, screenshot,
                                                                          tmp_path):
    page = live_page
    page.wait_for_function(SHOWN, arg=4, timeout=60_000)
    fields = page.locator("form .field").evaluate_all("rows => rows.map(r => r.dataset.option)")
    assert fields == [o.name for o in MERGE_OPTIONS if o.name in MERGE_NAMES] + \
        [o.name for o in LIVE_OPTIONS if o.name in TRACKING_NAMES]  # generated from the declarations
    assert page.locator("#model option").all_inner_texts() == ["SAE"]

    sent, got = last_pair(page)
    assert decoded(sent).shape == (360, 640, 3)
    assert_swapped_in_the_face_only(decoded(sent), decoded(got), workspace)
    (tmp_path / "answer.jpg").write_bytes(got)
    assert read_label(tmp_path / "answer.jpg") is not None  # the frame as sent carries the synthetic label

    label = page.locator("#synthetic")
    assert label.is_visible() and label.inner_text().strip().lower() == "synthetic"
    shown, over = page.locator("#output").bounding_box(), label.bounding_box()
    assert shown["x"] <= over["x"] < shown["x"] + shown["width"]
    assert shown["y"] <= over["y"] < shown["y"] + shown["height"]
    stats = page.locator("#stats")
    assert float(stats.get_attribute("data-fps")) > 0 and float(stats.get_attribute("data-latency")) > 0
    assert page.inner_text("#fps").endswith(" fps") and "latency" in page.inner_text("#latency")
    assert "1 face swapped" in page.inner_text("#stages")
    screenshot(page, "live")


def test_options_change_the_stream_live_and_bad_values_are_refused(live_page):
    page = live_page
    page.wait_for_function(SHOWN, arg=2, timeout=60_000)
    # raw-mask: the mask on black, so the frame's corner goes black once the server takes the new mode.
    page.select_option("#opt-mode", "raw-mask")
    page.wait_for_function("""() => {
        const px = document.getElementById('output').getContext('2d').getImageData(4, 4, 1, 1).data;
        return px[0] + px[1] + px[2] < 30; }""", timeout=30_000)
    page.fill("#opt-erode", "5000")
    page.dispatch_event("#opt-erode", "input")
    page.wait_for_function("document.getElementById('status').textContent.includes('out of range')")
    before = int(page.get_attribute("#stats", "data-shown"))
    page.wait_for_function(SHOWN, arg=before + 3, timeout=30_000)  # the stream went on with the last good values


# -- the socket's door and hostile messages -----------------------------------------------------------------------


def _handshake(base_url: str, headers: dict[str, str]) -> httpx.Response:
    """A WebSocket opening request to the live socket, as a browser or a script sends it."""
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()}
    return httpx.get(base_url + "/api/live/socket", headers={**upgrade, **headers}, timeout=10)


def test_a_socket_without_the_token_or_from_another_page_is_refused(base_url):
    port = urlsplit(base_url).port
    cookie = {"Cookie": f"{cookie_name(port)}={TOKEN}"}
    for headers in ({}, {"Origin": base_url},  # no token
                    {"X-Facelab-Token": "wrong"}, {"Cookie": f"{cookie_name(port)}=wrong", "Origin": base_url},
                    {**cookie},  # a cookie needs the page's Origin: cookies go with any page of 127.0.0.1
                    {**cookie, "Origin": "http://evil.example"}, {**cookie, "Origin": "http://127.0.0.1:1"},
                    {**cookie, "Origin": "null"},
                    {"X-Facelab-Token": TOKEN, "Host": f"evil.example:{port}"}):  # DNS rebinding
        assert _handshake(base_url, headers).status_code == 403, headers
    # The page's own request opens it (the guard is what refused the others).
    assert _handshake(base_url, {**cookie, "Origin": base_url}).status_code == 101
    with pytest.raises(Exception, match="403"):
        connect(f"ws://127.0.0.1:{port}/api/live/socket", open_timeout=10)


def _socket(base_url: str):
    return connect(f"ws://127.0.0.1:{urlsplit(base_url).port}/api/live/socket", open_timeout=10,
                   additional_headers={"X-Facelab-Token": TOKEN}, max_size=2**24)


def _answer(ws) -> dict | tuple[dict, np.ndarray]:
    message = ws.recv(timeout=60)
    if isinstance(message, str):
        return json.loads(message)
    length = struct.unpack(">I", message[:4])[0]
    return json.loads(message[4:4 + length]), decoded(message[4 + length:])


def _png_header(width: int, height: int) -> bytes:
    size = struct.pack(">II", width, height)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + size + b"\x08\x02\0\0\0"


def _refused(ws, message: str | bytes, words: str) -> None:
    ws.send(message)
    answer = _answer(ws)
    assert answer["type"] == "error" and words in answer["text"], (message[:40], answer)
    assert answer["frame"] is isinstance(message, bytes)  # the page counts the frames answered


def test_hostile_messages_get_an_error_and_the_stream_goes_on(base_url, workspace):
    frame = cv2.imread(str(dst_frames(workspace)[0]))
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    with _socket(base_url) as ws, _socket(base_url) as other:
        _refused(ws, jpeg, "no model chosen yet")
        for message, words in [("{", "not valid JSON"), ("[1]", "must be a JSON object"), ("x" * 70_000, "larger"),
                               ('{"model": "../../etc/passwd"}', "no '../../etc/passwd' model"),
                               ('{"model": 7}', "no '7' model"), ('{"run": "x"}', "unknown fields"),
                               ('{"options": {"erode": 1}}', "no model chosen yet"),
                               ('{"model": "SAE", "options": {"erode": 5000}}', "out of range"),
                               ('{"model": "SAE", "options": {"erode": 1e400}}', "out of range"),
                               ('{"model": "SAE", "options": {"smoothing": "NaN"}}', "smoothing got nan"),
                               ('{"model": "SAE", "options": {"export_alpha": true}}', "cannot be changed live"),
                               ('{"model": "SAE", "options": {"mask": "seg-dst"}}', "needs a trained XSeg"),
                               ('{"model": "SAE", "options": [1]}', "must be a JSON object")]:
            _refused(ws, message, words)
        ws.send(json.dumps({"model": "SAE", "options": {"erode": 12}}))
        ready = _answer(ws)
        assert ready["type"] == "ready" and ready["options"]["erode"] == 12
        for message, words in [(b"not an image", "must be a JPEG or PNG"), (jpeg[:2] + b"\0" * 64, "JPEG or PNG"),
                               (_png_header(100_000, 100_000), "at most"), (jpeg[:400], "not a decodable"),
                               (b"\xff\xd8" + b"\0" * (MAX_FRAME_BYTES + 1), "at most"),
                               ('{"options": {"mode": "nope"}}', "'nope'")]:
            _refused(ws, message, words)
        ws.send(jpeg)
        header, got = _answer(ws)
        assert header["faces"] == 1 and {"total", "decode", "encode"} <= set(header["ms"])
        assert_swapped_in_the_face_only(decoded(jpeg), got, workspace)
        # One session per socket: the other socket's options are its own.
        other.send('{"model": "SAE"}')
        assert _answer(other)["options"]["erode"] == 0


def test_the_models_are_the_trained_and_exported_ones_and_the_options_start_from_the_saved(base_url, workspace):
    save_settings(workspace / "model" / SETTINGS_FILE, {"erode": 33, "mode": "overlay"})
    (workspace / "model" / "broken.onnx").write_bytes(b"not a graph")
    state = httpx.get(base_url + "/api/live/state", headers={"X-Facelab-Token": TOKEN}, timeout=30).json()
    assert state["models"] == ["SAE", "broken.onnx"]
    values = {o["name"]: o["value"] for o in state["options"]}
    assert values["erode"] == 33 and values["mode"] == "overlay" and values["smoothing"] == 0.5
    with _socket(base_url) as ws:
        _refused(ws, '{"model": "broken.onnx"}', "not a readable ONNX model")
        ws.send('{"model": "SAE"}')
        assert _answer(ws)["options"]["erode"] == 33


def test_an_xseg_mask_uses_the_workspace_segmenter(base_url, workspace, tiny_xseg):
    shutil.copytree(tiny_xseg, workspace / "model" / "xseg")
    jpeg = cv2.imencode(".jpg", cv2.imread(str(dst_frames(workspace)[0])))[1].tobytes()
    with _socket(base_url) as ws:
        ws.send('{"model": "SAE"}')
        assert _answer(ws)["options"]["mask"] == "auto"
        ws.send('{"options": {"mask": "seg-prd"}}')
        assert _answer(ws)["options"]["mask"] == "seg-prd"
        ws.send(jpeg)
        header, got = _answer(ws)
        assert header["faces"] == 1
        assert_swapped_in_the_face_only(decoded(jpeg), got, workspace)


def test_decode_frame_refuses_what_is_not_a_camera_frame():
    frame = np.full((360, 640, 3), 90, np.uint8)
    assert decode_frame(cv2.imencode(".png", frame)[1].tobytes()).shape == (360, 640, 3)
    for bad in (b"", b"\xff\xd8\xff", _png_header(0, 10), _png_header(4000, 4000), b"GIF89a" + b"\0" * 20):
        with pytest.raises(InputError):
            decode_frame(bad)
