"""`xseg apply / remove / fetch` on real faces: masks go into the metadata at the face's size with the image
bytes untouched, come out again, and labelled faces are copied without ever overwriting."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from facelab.errors import OutputError
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.xseg.apply import apply_folder, fetch_labelled, remove_folder
from facelab.xseg.segmenter import Segmenter
from facelab.xseg.stored import KEY, has_mask, stored_mask


def _scan(data: bytes) -> bytes:
    """A JPEG from its start-of-scan marker on: the compressed pixels."""
    return data[data.index(b"\xff\xda"):]


def test_apply_then_remove_keeps_pixels(workspace, tiny_xseg):
    folder = workspace / "data_dst/aligned"
    faces = list_faces(folder)
    before = {p: p.read_bytes() for p in faces}
    segmenter = Segmenter.load(tiny_xseg)
    seen = []
    report = apply_folder(folder, segmenter, batch_size=4, progress=seen.append)
    assert report.done == len(faces) and not report.skipped
    assert seen[-1].done == seen[-1].total == len(faces)
    for path in faces:
        image, meta = read_face(path)
        mask = stored_mask(meta)
        assert mask is not None and mask.shape == (meta.image_size, meta.image_size)
        assert meta.extra[KEY]["iteration"] == segmenter.iteration
        assert _scan(path.read_bytes()) == _scan(before[path])
        assert np.array_equal(image, cv2.imdecode(np.frombuffer(before[path], np.uint8), cv2.IMREAD_COLOR))
    expected = segmenter.predict(read_face(faces[0])[0][None])[0]
    assert np.abs(stored_mask(read_meta(faces[0])) - expected).max() <= 1 / 255 + 1e-6

    removed = remove_folder(folder)
    assert (removed.done, removed.kept) == (len(faces), 0)
    assert not any(has_mask(read_meta(p)) for p in faces)
    assert all(_scan(p.read_bytes()) == _scan(before[p]) for p in faces)
    assert remove_folder(folder).kept == len(faces)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left


def test_fetch_copies_only_labelled_faces_and_never_overwrites(workspace, tmp_path):
    folder = workspace / "data_src/aligned"
    faces = list_faces(folder)
    for path in faces[:2]:
        meta = read_meta(path)
        meta.mask_polygons = {"include": [[[1.0, 1.0], [30.0, 1.0], [30.0, 30.0]]]}
        write_meta(path, meta)
    out = tmp_path / "labelled"
    report = fetch_labelled(folder, out)
    assert report.done == 2 and sorted(p.name for p in out.iterdir()) == sorted(p.name for p in faces[:2])
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in faces[:2])
    (out / faces[0].name).write_bytes(b"the user's own file")
    again = fetch_labelled(folder, out)
    assert (again.done, again.kept) == (0, 2)
    assert (out / faces[0].name).read_bytes() == b"the user's own file"
    with pytest.raises(OutputError):
        fetch_labelled(folder, folder)


def test_cli_apply_remove_fetch(workspace, tiny_xseg, run_cli):
    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    folder = workspace / "data_dst/aligned"
    applied = run_cli("xseg", "apply", str(folder), "-w", str(workspace))
    assert applied.code == 0, applied.err
    assert f"to {len(list_faces(folder))} face(s)" in applied.out
    assert all(has_mask(read_meta(p)) for p in list_faces(folder))
    removed = run_cli("xseg", "remove", "-w", str(workspace), "--yes")  # DIR defaults to the workspace's dst faces
    assert removed.code == 0 and str(folder) in removed.out, removed.err
    assert not any(has_mask(read_meta(p)) for p in list_faces(folder))
    fetched = run_cli("xseg", "fetch", "-w", str(workspace), "--side", "src", "--yes")
    assert fetched.code == 0 and "Copied 0 labelled face(s)" in fetched.out
    assert str(workspace / "data_src/aligned_xseg") in fetched.out
    again = run_cli("xseg", "apply", "-w", str(workspace), "--yes")
    assert again.code == 0 and all(has_mask(read_meta(p)) for p in list_faces(folder))
    elsewhere = run_cli("xseg", "remove", "-w", str(workspace / "nowhere"))
    assert elsewhere.code == 2 and "folder not found" in elsewhere.err
    missing = run_cli("xseg", "apply", str(folder), "-w", str(workspace / "nowhere"))
    assert missing.code == 2 and "no trained XSeg" in missing.err


def test_apply_stopped_mid_folder_leaves_every_face_whole(workspace, tiny_xseg):
    """A failure (or kill) during a batch: faces before it carry their mask, the rest are as they were, every
    file still reads, and no temp file is left."""
    folder = workspace / "data_dst/aligned"
    faces = list_faces(folder)
    segmenter = Segmenter.load(tiny_xseg)
    calls = []
    real = segmenter.predict

    def predict_then_fail(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(batch)

    segmenter.predict = predict_then_fail
    with pytest.raises(KeyboardInterrupt):
        apply_folder(folder, segmenter, batch_size=4)
    marked = [has_mask(read_face(p)[1]) for p in faces]
    assert marked == [True] * 4 + [False] * (len(faces) - 4)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
