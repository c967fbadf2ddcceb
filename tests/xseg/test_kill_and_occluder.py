"""What users rely on when XSeg goes wrong or works: `xseg apply` killed by SIGKILL mid-folder (a real process)
leaves every face either as it was or whole with its mask, pixels byte-exact; and `merge --mask seg-dst` keeps
the dst pixels of what covers the face."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np

from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face, read_meta, write_face, write_meta
from facelab.xseg.apply import apply_folder
from facelab.xseg.segmenter import Segmenter
from facelab.xseg.stored import KEY, encode_mask, stored_mask

COPIES = 24  # of each of the 15 demo dst faces (every third, the first included, as PNG): the kill lands well
# before the end, after the first batch (16 faces: PNGs and JPEGs) is written


def _pixels(data: bytes) -> bytes:
    """The compressed pixels: a JPEG from its start-of-scan marker on, a PNG's IDAT chunks."""
    if data[:2] == b"\xff\xd8":
        return data[data.index(b"\xff\xda"):]
    out, at = b"", 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if data[at + 4 : at + 8] == b"IDAT":
            out += data[at + 8 : at + 8 + length]
        at += 12 + length
    return out


def _faceset(workspace, folder):
    """COPIES × the demo dst faces in ``folder``, names interleaved so JPEGs and PNGs alternate in apply's order."""
    folder.mkdir()
    for k in range(COPIES):
        for path in list_faces(workspace / "data_dst/aligned"):
            if k % 3 == 0:
                write_face(folder / f"{k:03d}_{path.stem}.png", *read_face(path))
            else:
                shutil.copyfile(path, folder / f"{k:03d}_{path.name}")
    return {p.name: p.read_bytes() for p in list_faces(folder)}


def test_apply_killed_mid_folder_leaves_every_face_whole(workspace, tiny_xseg, tmp_path):
    shutil.copytree(tiny_xseg, workspace / "model/xseg")
    folder = tmp_path / "faces"
    before = _faceset(workspace, folder)
    first = folder / min(before)
    first_inode = first.stat().st_ino
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", "import sys; from facelab.cli import main; main(sys.argv[1:])",
                                "xseg", "apply", str(folder), "-w", str(workspace), "--yes"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while first.stat().st_ino == first_inode and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # write_meta replaces the file by a rename: a new inode once the first batch is written
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL, process.stderr.read().decode()[-2000:]

    assert sorted(p.name for p in list_faces(folder)) == sorted(before)  # nothing lost, nothing new
    assert all(p.name.startswith(".") for p in folder.iterdir() if p.name not in before)  # temp files are hidden
    done = 0
    for name, old in before.items():
        data = (folder / name).read_bytes()
        if data == old:
            continue
        done += 1
        meta = read_meta(folder / name)
        mask = stored_mask(meta)
        assert mask is not None and mask.shape == (meta.image_size, meta.image_size), name
        assert _pixels(data) == _pixels(old), name
        assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                              cv2.imdecode(np.frombuffer(old, np.uint8), cv2.IMREAD_COLOR))
    assert 0 < done < len(before), done  # killed mid-folder, after some faces were written
    assert {n for n in before if (folder / n).read_bytes() != before[n] and n.endswith(".png")}, "no PNG reached"

    again = apply_folder(folder, Segmenter.load(workspace / "model/xseg"))  # simply run again to finish
    assert again.done == len(before) and all(stored_mask(read_meta(folder / n)) is not None for n in before)


def _occlude_frame(workspace):
    """Paste a textured patch over the mouth of dst frame 00001 (in the frame file) and store, as the face's
    applied XSeg mask, the hull minus that patch (the other faces get their hull). Returns (frame name, patch mask
    (H, W) bool)."""
    frame_path = workspace / "data_dst/00001.png"
    for path in list_faces(workspace / "data_dst/aligned"):
        other = read_meta(path)
        other.extra[KEY] = encode_mask(hull_mask(other.landmarks, other.image_size, other.image_size), 1)
        write_meta(path, other)
    face = next(p for p in list_faces(workspace / "data_dst/aligned") if read_meta(p).source_filename == frame_path.name)
    meta = read_meta(face)
    frame = cv2.imread(str(frame_path), cv2.IMREAD_COLOR)
    x0, y0 = meta.source_landmarks[48:].min(0) - 6
    x1, y1 = meta.source_landmarks[48:].max(0) + 6
    covered = np.zeros(frame.shape[:2], np.uint8)
    cv2.ellipse(covered, (int((x0 + x1) / 2), int((y0 + y1) / 2)), (int((x1 - x0) / 2), int((y1 - y0) / 2)), 0, 0,
                360, 1, -1)
    texture = np.random.default_rng(0).integers(0, 256, frame.shape, dtype=np.uint8)
    frame[covered > 0] = texture[covered > 0]
    cv2.imwrite(str(frame_path), frame)
    s = meta.image_size
    in_face = cv2.warpAffine(covered.astype(np.float32), meta.face_from_image, (s, s), flags=cv2.INTER_LINEAR)
    meta.extra[KEY] = encode_mask(hull_mask(meta.landmarks, s, s) * (1 - in_face), 1)
    write_meta(face, meta)
    return frame_path.name, covered > 0


def test_merge_seg_dst_keeps_the_occluders_dst_pixels(workspace, run_cli):
    name, covered = _occlude_frame(workspace)
    frame = cv2.imread(str(workspace / "data_dst" / name), cv2.IMREAD_COLOR)
    run = run_cli("merge", "-w", str(workspace), "--mask", "seg-dst", "--overwrite", "--yes")
    assert run.code == 0, run.err
    merged = cv2.imread(str(workspace / "data_dst/merged" / name), cv2.IMREAD_COLOR)
    # Tolerance: the stored mask is resampled twice by bilinear warps (face file's square → the merge's work
    # square → the frame), which spreads its edge by about a pixel each; 3 px inside the patch's outline it is 0.
    inner = cv2.erode(covered.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert inner.sum() > 200
    assert np.array_equal(merged[inner], frame[inner])
    merged_mask = cv2.imread(str(workspace / "data_dst/merged_mask" / name), cv2.IMREAD_GRAYSCALE)
    assert (merged_mask[inner] == 0).all()
    face_rest = (merged_mask > 250) & ~(cv2.dilate(covered.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    assert face_rest.sum() > 1000 and (merged[face_rest] != frame[face_rest]).any(axis=1).mean() > 0.5  # swapped
