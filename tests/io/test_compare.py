"""result_compare.mp4: dst | result side by side, at dst's fps, with dst's sound and the synthetic-media label."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelab import provenance
from facelab.cli import main
from facelab.errors import InputError
from facelab.io import video
from facelab.io.compare import side_by_side, write_compare


@pytest.fixture(scope="module")
def small_workspace(tmp_path_factory, dst_video):
    """Half a second of the real dst video (15 frames, its sound), its frames, and "merged" frames: the dst
    frames with the watermark where the face is, as merge leaves them."""
    root = tmp_path_factory.mktemp("compare")
    clip = video.cut(dst_video, 0.0, 0.5, out_path=root / "data_dst.mp4")
    count = video.extract_frames(clip, root / "data_dst")
    (root / "merged").mkdir()
    for path in sorted((root / "data_dst").glob("*.png")):
        frame = cv2.imread(str(path))
        weight = np.zeros(frame.shape[:2], np.float32)
        weight[60:300, 200:440] = 1.0  # the man's face region
        cv2.imwrite(str(root / "merged" / path.name), provenance.embed_watermark(frame, weight))
    return root, clip, count


def test_compare_video_is_both_halves_with_sound_and_label(small_workspace, capsys):
    root, clip, count = small_workspace
    out = write_compare(root / "data_dst", root / "merged", clip, root / "result_compare.mp4",
                        metadata=provenance.label_container(step="test"))
    info, dst = video.probe(out), video.probe(clip)
    assert (info.width, info.height) == (2 * dst.width, dst.height) == (1280, 360)
    assert info.frames == count == 15 and info.fps == dst.fps
    assert len(info.audio) == 1 and info.audio[0].duration and info.audio[0].duration > 0.3
    check = provenance.verify(out)
    assert check.has_label and check.has_watermark  # the merged half keeps its watermark
    with pytest.raises(SystemExit) as verified:
        main(["verify", str(out)])
    assert verified.value.code == 0 and "SYNTHETIC (made with facelab)" in capsys.readouterr().out
    # The left half is the dst frame (bar its caption and the codec's loss).
    with video.open_video(out) as container:
        first = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    original = cv2.imread(str(root / "data_dst" / "00001.png"))
    assert np.abs(first[:300, :640].astype(int) - original[:300]).mean() < 4
    assert not list(root.glob(".result_compare-*"))  # the temporary frames are gone


def test_side_by_side_keeps_the_watermark_grid():
    left = np.zeros((100, 150, 3), np.uint8)
    right = np.full((100, 150, 3), 90, np.uint8)
    out = side_by_side(left, right, ("", ""))
    assert out.shape == (100, 192 + 150, 3)  # the right half starts on the next 64 px tile boundary
    assert np.array_equal(out[:, 192:], right) and np.array_equal(out[:, :150], left)
    assert (out[:, 150:192] == 255).all()
    with pytest.raises(ValueError):
        side_by_side(left, right[:50])


def test_compare_needs_every_dst_frame(small_workspace, tmp_path):
    root, clip, _ = small_workspace
    (tmp_path / "dst").mkdir()
    with pytest.raises(InputError, match="no dst frame"):
        write_compare(tmp_path / "dst", root / "merged", clip, tmp_path / "c.mp4")
    with pytest.raises(InputError, match="no merged frames"):
        write_compare(root / "data_dst", tmp_path / "dst", clip, tmp_path / "c.mp4")
    assert not (tmp_path / "c.mp4").exists()
