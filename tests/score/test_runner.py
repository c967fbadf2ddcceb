"""`facelab score` end to end on a tiny real workspace: an unswapped video scores as not swapped; pasting the src
woman's face into some frames shows up in identity and flicker; the files and the CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facelab.cli import main
from facelab.errors import WorkspaceError
from facelab.io.faceimage import list_faces, read_face, read_meta
from facelab.merge.merger import PredictedFace, merge_frame, model_face_from_frame
from facelab.merge.options import resolve
from facelab.score.runner import JSON_NAME, REPORT_NAME, score_workspace


@pytest.fixture(scope="module")
def unswapped(tiny, tmp_path_factory):
    ws = tiny.copy_to(tmp_path_factory.mktemp("unswapped") / "ws")
    return ws, score_workspace(ws.root, device="cpu", worst_frames=2)


def test_unswapped_video_scores_as_not_swapped(unswapped):
    _, result = unswapped
    s = result.summary
    assert s["frames"] == 6 and s["faces"] == 6 and s["faces_found"] == 6
    # the same pixels give the same landmarks: both sides are measured by the same detector and predictor
    assert s["pose"]["error_deg"] == pytest.approx(0.0, abs=1e-6)
    assert s["expression"]["landmark_error"] == pytest.approx(0.0, abs=1e-6)
    assert s["identity"]["share_nearer_to_src"] == 0.0
    assert s["identity"]["to_dst"] < 0.6 < s["identity"]["to_src"]
    assert s["flicker"]["flicker"] == pytest.approx(0.0, abs=1e-6)
    assert s["flicker"]["change_ratio"] == pytest.approx(1.0)
    assert s["flicker"]["dst_change"] > 0  # the real video moves; the merge added nothing to it
    assert "skipped" in s["reconstruction"]  # no trained model in this workspace


def test_score_files(unswapped):
    ws, result = unswapped
    data = json.loads((ws.root / JSON_NAME).read_text())  # strict JSON: nan is written as null
    assert [f["frame"] for f in data["faces"]] == [f"{i:05d}" for i in range(1, 7)]
    assert data["faces"][0]["flicker"] is None  # no frame before the first
    assert data["summary"]["faces_found"] == 6
    page = (ws.root / REPORT_NAME).read_text()
    assert page.startswith("<!doctype html>") and "pose error" in page
    assert page.count("data:image/png;base64,") == 4 + 2  # four plots, two worst-frame thumbnails
    assert len(result.worst) == 2


def test_pasted_src_face_is_seen(tiny, tmp_path):
    ws = tiny.copy_to(tmp_path / "ws")
    woman = read_face(list_faces(ws.aligned("src"))[0])[0].astype(np.float32) / 255
    options = resolve({"mode": "seamless", "mask": "dst", "colour_transfer": "rct"}).base
    for path in list_faces(ws.aligned("dst"))[3:]:
        meta = read_meta(path)
        frame_path = ws.frames("dst") / meta.source_filename
        face = PredictedFace(meta, model_face_from_frame(meta, "full", woman.shape[0]), woman)
        merged = merge_frame(cv2.imread(str(frame_path)), [face], options, learns_mask=False)
        cv2.imwrite(str(ws.merged / frame_path.name), merged.image)
    result = score_workspace(ws.root, device="cpu", worst_frames=0, identity_faces=3)
    faces = result.faces
    assert all(f.found for f in faces)
    assert all(f.to_src > f.to_dst for f in faces[:3])  # untouched frames: still the man
    assert all(f.to_src < f.to_dst for f in faces[3:])  # pasted frames: nearer to the woman
    assert result.summary["identity"]["share_nearer_to_src"] == pytest.approx(0.5)
    assert faces[3].flicker > 5 * max(f.flicker for f in faces[1:3])  # the jump from man to woman
    assert faces[1].flicker == pytest.approx(0.0, abs=1e-6)


def test_no_merged_frames_is_a_workspace_error(tiny, tmp_path):
    ws = tiny.copy_to(tmp_path / "ws")
    for path in ws.merged.iterdir():
        path.unlink()
    with pytest.raises(WorkspaceError, match="merge"):
        score_workspace(ws.root, device="cpu")


def test_cli(unswapped, capsys):
    ws, _ = unswapped
    main(["score", str(ws.root), "--yes", "--device", "cpu", "--identity-faces", "2", "--worst-frames", "0",
          "--detector", "hog"])  # returns on success (errors exit 2)
    out = capsys.readouterr().out
    assert "faces nearer to src than to dst" in out and "0 %" in out
    assert "0.000 deg" in out  # with another detector than the faceset's (hog), still no pose error
    assert str(ws.root / REPORT_NAME) in out
