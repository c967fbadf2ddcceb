"""Frame sources: streaming with bounded read-ahead, errors passed to the consumer, 8-bit conversion."""

import itertools
import time

import numpy as np
import pytest

from facelab.errors import VideoError
from facelab.extract.frames import Frame, count_video_frames, read_ahead, to_bgr8, video_frames


def test_read_ahead_stays_a_bounded_distance_ahead():
    produced = []

    def frames():
        for i in itertools.count():
            produced.append(i)
            yield Frame(str(i), None)

    stream = read_ahead(frames(), depth=4)
    first = [next(stream).name for _ in range(3)]
    time.sleep(0.2)  # let the reader run as far as it may
    assert first == ["0", "1", "2"] and len(produced) <= 3 + 4 + 2
    stream.close()


def test_read_ahead_hands_errors_to_the_consumer():
    def broken():
        yield Frame("a", None)
        raise VideoError("decoder broke")

    stream = read_ahead(broken())
    assert next(stream).name == "a"
    with pytest.raises(VideoError, match="decoder broke"):
        next(stream)


def test_video_frames_stream_in_order_with_frame_file_names(dst_video):
    assert count_video_frames(dst_video) == 72
    first = list(itertools.islice(video_frames(dst_video), 3))
    assert [f.name for f in first] == ["00001.png", "00002.png", "00003.png"]
    assert first[0].image.shape == (360, 640, 3) and first[0].image.dtype == np.uint8


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "data_src.mp4"
    bad.write_bytes(b"nope")
    with pytest.raises(VideoError, match="data_src.mp4"):
        list(video_frames(bad))


def test_float_images_are_taken_as_0_to_1():
    assert to_bgr8(np.array([[0.0, 0.5, 1.0]], np.float32)).tolist() == [[[0] * 3, [128] * 3, [255] * 3]]
