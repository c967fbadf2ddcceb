"""Hostile faces and hostile paths in a workspace the UI serves: one bad face is flagged and the rest still listed,
and the move endpoints only ever move faces of faceset folders (never a dst frame)."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from facelab.io import faceimage

from .conftest import TOKEN

SRC = "data_src/aligned"


def _with_json(path, edit) -> None:
    """Rewrite the face file's metadata JSON with ``edit(dict)`` applied, bypassing the writer's checks (as a
    stranger's tool would)."""
    data = path.read_bytes()
    meta = json.loads(json.dumps(faceimage.read_meta(path).to_json()))
    edit(meta)
    payload = json.dumps(meta).encode()  # allow_nan: Infinity goes in as it is
    path.write_bytes(faceimage._jpeg_insert(faceimage._jpeg_strip(data), payload))


@pytest.fixture
def hostile(workspace, tmp_path):
    """data_src/aligned with three bad faces among the good ones, the first file of the folder among them: one
    with Infinity as its yaw, one with a string score, one a link to a face outside the workspace."""
    folder = workspace / SRC
    good = sorted(p.name for p in folder.glob("*.jpg"))
    bad_yaw, bad_score = folder / good[0], folder / good[5]
    _with_json(bad_yaw, lambda m: m.update(yaw=float("inf")))
    _with_json(bad_score, lambda m: m.update(score="very high"))
    outside = tmp_path / "outside.jpg"
    shutil.copy(folder / good[1], outside)
    (folder / "00000_0.jpg").symlink_to(outside)
    return {"bad": {"00000_0.jpg", bad_yaw.name, bad_score.name}, "good": set(good) - {bad_yaw.name, bad_score.name}}


def _get(base_url, path, **params):
    answer = httpx.get(base_url + path, params=params, headers={"X-Facelab-Token": TOKEN}, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def _post(base_url, path, body):
    return httpx.post(base_url + path, json=body, headers={"X-Facelab-Token": TOKEN}, timeout=60)


def test_one_hostile_face_is_flagged_and_the_others_still_listed(base_url, hostile):
    for page in ("faceset", "masks"):
        listed = [f["path"] for f in _get(base_url, f"/api/{page}/folders")["folders"]]
        assert listed == [SRC, "data_dst/aligned"], page
    faces = _get(base_url, "/api/faceset/faces", folder=SRC)["faces"]
    flagged = {f["name"]: f["problem"] for f in faces if f.get("problem")}
    assert set(flagged) == hostile["bad"]
    assert "link" in flagged["00000_0.jpg"]
    assert {f["name"] for f in faces if not f.get("problem")} == hostile["good"]
    assert all(f["yaw"] is not None and f["v"] for f in faces if not f.get("problem"))
    editable = _get(base_url, "/api/masks/faces", folder=SRC)
    assert {rel.rsplit("/", 1)[1] for rel in editable["faces"]} == hostile["good"]
    assert {f["name"] for f in editable["skipped"]} == hostile["bad"]
    # A flagged face can still be moved to the trash (that is what the flag is for).
    assert _post(base_url, "/api/faceset/trash", {"folder": SRC, "names": sorted(hostile["bad"])}).status_code == 200
    assert not any(f.get("problem") for f in _get(base_url, "/api/faceset/faces", folder=SRC)["faces"])


def test_trash_skip_and_save_refuse_dst_frames_and_links_to_them(base_url, workspace):
    frames = workspace / "data_dst"
    frame = frames / "00001.png"
    before = frame.read_bytes()
    (frames / "aligned" / "zz_link.png").symlink_to(frame)
    trash = _post(base_url, "/api/faceset/trash", {"folder": "data_dst", "names": ["00001.png"]})
    assert trash.status_code == 400 and "not a faceset folder" in trash.json()["error"]
    for path in ("data_dst/00001.png", "data_dst/aligned/zz_link.png", "data_dst.mp4", "model/SAE_preview.png"):
        for endpoint, body in (("skip", {}), ("save", {"polygons": {}}), ("save", {"polygons": {}, "confirm": True})):
            refused = _post(base_url, f"/api/masks/{endpoint}", {"path": path, **body})
            assert refused.status_code == 400, (endpoint, path, refused.text)
    assert _post(base_url, "/api/faceset/sort", {"folder": "data_dst", "method": "origname"}).status_code == 400
    assert frame.read_bytes() == before and not (workspace / "data_skipped").exists()
    assert (workspace / "data_dst.mp4").is_file() and (workspace / "model" / "SAE_preview.png").is_file()
    # A face of a faceset folder is still skipped as before.
    face = sorted((frames / "aligned").glob("*.jpg"))[0]
    skipped = _post(base_url, "/api/masks/skip", {"path": f"data_dst/aligned/{face.name}"})
    assert skipped.status_code == 200 and (frames / "aligned_skipped" / face.name).is_file()
