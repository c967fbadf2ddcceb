"""The synthetic-media label: metadata in PNG/JPEG/MP4 and an invisible watermark that survives H.264."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from facelab import provenance
from facelab.cli import cli
from facelab.extract.extractor import extract_faces
from facelab.extract.frames import video_frames
from facelab.geometry.masks import hull_mask


def test_png_and_jpeg_labels_round_trip(tmp_path, single_face_jpg):
    image = cv2.imread(str(single_face_jpg))
    png, jpg = tmp_path / "a.png", tmp_path / "a.jpg"
    png.write_bytes(provenance.label_png(cv2.imencode(".png", image)[1].tobytes(), frame="00001.png"))
    jpg.write_bytes(provenance.label_jpeg(cv2.imencode(".jpg", image)[1].tobytes()))
    for path in (png, jpg):
        label = provenance.read_label(path)
        assert label["synthetic"] is True and label["label"] == provenance.LABEL_TEXT
        assert np.array_equal(cv2.imread(str(path)), cv2.imread(str(path)))  # still a normal, decodable image
    assert provenance.read_label(png)["frame"] == "00001.png"
    assert np.array_equal(cv2.imread(str(png)), image)  # the label is metadata only
    assert provenance.read_label(single_face_jpg) is None


def test_watermark_changes_only_weighted_pixels(single_face_jpg):
    image = cv2.imread(str(single_face_jpg))
    weight = np.zeros(image.shape[:2], np.float32)
    weight[100:300, 150:350] = 1.0
    marked = provenance.embed_watermark(image, weight)
    assert np.array_equal(marked[weight == 0], image[weight == 0])
    diff = marked.astype(int) - image.astype(int)
    assert 2.0 < np.abs(diff[weight > 0]).mean() <= provenance.STRENGTH
    assert cv2.PSNR(marked[100:300, 150:350], image[100:300, 150:350]) > 38  # ±3 grey levels
    assert provenance.watermark_score(provenance.block_scores(marked)) >= provenance.THRESHOLD
    assert provenance.watermark_score(provenance.block_scores(image)) < provenance.THRESHOLD


@pytest.fixture(scope="module")
def marked_video(tmp_path_factory, dst_video):
    """The first 24 dst frames with the watermark on the face hull, re-encoded as H.264 (libx264 defaults:
    CRF 23, yuv420p) with the container label — what `facelab video assemble` makes of merged frames."""
    import av

    out = tmp_path_factory.mktemp("video") / "marked.mp4"
    with av.open(str(out), "w") as container:
        container.metadata.update(provenance.label_container(step="test"))
        stream = container.add_stream("libx264", rate=30)
        stream.pix_fmt = "yuv420p"
        stream.width, stream.height = 640, 360
        for frame in video_frames(dst_video):
            if frame.name > "00024.png":
                break
            (_, meta), = extract_faces(frame.image, image_size=128, max_faces=1)
            weight = hull_mask(meta.source_landmarks, *frame.image.shape[:2])
            marked = provenance.embed_watermark(frame.image, weight)
            for packet in stream.encode(av.VideoFrame.from_ndarray(marked, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def test_watermark_survives_h264_and_is_absent_from_the_original(marked_video, dst_video):
    found = provenance.verify(marked_video)
    assert found.has_label and found.label["step"] == "test"
    assert found.has_watermark and found.frames_checked == 24
    original = provenance.verify(dst_video)
    assert not original.has_label and not original.has_watermark and not original.synthetic


def test_verify_command_exit_codes(marked_video, dst_video):
    runner = CliRunner()
    yes = runner.invoke(cli, ["verify", str(marked_video)])
    assert yes.exit_code == 0 and "SYNTHETIC" in yes.output and "watermark:      found" in yes.output
    no = runner.invoke(cli, ["verify", str(dst_video)])
    assert no.exit_code == 1 and "no facelab label found" in no.output
