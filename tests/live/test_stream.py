"""`facelab live` and the stream runner on a real clip: every frame swapped and labelled, dropped frames counted
when the swap is slower than the source, a clear error for a camera that is not there."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest

from facelab import provenance
from facelab.errors import ModelError
from facelab.io.video import probe
from facelab.live.session import LiveSwap
from facelab.live.sources import open_source
from facelab.live.stream import run_stream


def test_live_writes_every_frame_of_a_clip_swapped_and_labelled(run_cli, short_clip, model_dir, tmp_path):
    out = tmp_path / "live.mp4"
    result = run_cli("live", "-w", str(tmp_path / "ws"), "--model-dir", str(model_dir), "--input", str(short_clip),
                     "--output", str(out), "--no-realtime", "--device", "cpu", "--mask", "dst", "--yes")
    assert result.code == 0, result.err
    frames = probe(short_clip).frames
    assert f"Swapped {frames} of {frames} frame(s) (0 dropped) with {frames} face(s)" in result.out
    assert "frames/s, latency median" in result.out and f"Wrote {frames} frame(s)" in result.out
    assert probe(out).frames == frames
    check = provenance.verify(out)
    assert check.has_label and check.label["step"] == "live" and check.has_watermark
    with av.open(str(out)) as container:  # each frame on its own carries the watermark
        scores = [provenance.watermark_score(provenance.block_scores(f.to_ndarray(format="gray")))
                  for f in container.decode(video=0)]
    assert len(scores) == frames and min(scores) >= provenance.THRESHOLD


class SlowSwapper:
    """The test model, taking at least ``seconds`` a call: a swap slower than the clip's 30 frames/s."""

    def __init__(self, swapper, seconds: float):
        self.inner, self.seconds = swapper, seconds
        self.name, self.resolution, self.face_type = swapper.name, swapper.resolution, swapper.face_type
        self.learn_mask = swapper.learn_mask

    def predict(self, faces, masks=(True, True)):
        time.sleep(self.seconds)
        return self.inner.predict(faces, masks)


class Recorder:
    """A sink that keeps the numbers of the frames it was given."""

    def __init__(self):
        self.numbers, self.closed = [], None

    def write(self, number, image):
        self.numbers.append(number)

    def close(self, ok=True):
        self.closed = ok


def test_a_slow_swap_drops_frames_instead_of_falling_behind(swapper, short_clip):
    live = LiveSwap(SlowSwapper(swapper, 0.15), {"mode": "overlay", "mask": "dst"})
    sink = Recorder()
    report = run_stream(live, open_source(short_clip), sink, realtime=True, queue_size=1)
    frames = probe(short_clip).frames
    assert report.frames_in == frames and report.dropped > 0
    assert report.frames_out + report.dropped == report.frames_in == frames
    # The oldest waiting frame made room each time: the frames out are in order, and the newest (the clip's
    # last) was never the one dropped.
    assert sink.numbers == sorted(set(sink.numbers)) and len(sink.numbers) == report.frames_out
    assert sink.numbers[-1] == frames - 1 and sink.closed is True


class EchoSwapper:
    """A model that answers each face with itself: the whole pipeline but the network, fast."""

    name, resolution, face_type, learn_mask = "echo", 64, "full", False

    def predict(self, faces, masks=(True, True)):
        return faces.astype(np.float32) / 255, None, None


def test_a_looped_stream_goes_round_the_clip_until_stopped_and_keeps_what_it_made(short_clip):
    frames = probe(short_clip).frames
    stop = threading.Event()
    sink = Recorder()
    sink.write = lambda number, image: sink.numbers.append(number) or (len(sink.numbers) >= frames + 3 and stop.set())
    live = LiveSwap(EchoSwapper(), {"mode": "overlay"}, detect_every=4)
    report = run_stream(live, open_source(short_clip), sink, realtime=False, loop=True, stop=stop)
    assert len(sink.numbers) >= frames + 3 and sink.numbers[:frames + 3] == list(range(frames + 3))
    assert report.dropped == 0 and report.faces == report.frames_out >= frames + 3
    assert sink.closed is True  # stopped, not failed: the recording is kept
    assert np.isfinite(report.latency(50)) and report.fps > 0


def test_a_failing_stage_stops_the_stream_and_throws_the_recording_away(short_clip):
    class Broken(EchoSwapper):
        def predict(self, faces, masks=(True, True)):
            raise ModelError("the model broke")

    sink = Recorder()
    with pytest.raises(ModelError, match="the model broke"):
        run_stream(LiveSwap(Broken()), open_source(short_clip), sink, realtime=False)
    assert sink.closed is False


def test_a_missing_camera_is_a_clear_error(run_cli, tmp_path):
    result = run_cli("live", "-w", str(tmp_path), "--input", "/dev/video97", "--yes")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip() == ("error: /dev/video97: no such camera device — plug the camera in and check its "
                                  "number (ls /dev/video*), or give a video file")


def test_a_missing_input_file_and_an_output_over_the_input_are_refused(run_cli, short_clip, tmp_path):
    result = run_cli("live", "-w", str(tmp_path), "--input", str(tmp_path / "gone.mp4"), "--yes")
    assert result.code == 2 and "gone.mp4" in result.err and "Traceback" not in result.err
    result = run_cli("live", "-w", str(tmp_path), "--input", str(short_clip), "--output", str(short_clip), "--yes")
    assert result.code == 2 and "overwrite the input" in result.err
    result = run_cli("live", "-w", str(tmp_path), "--input", str(short_clip), "--output", str(tmp_path / "x.gif"),
                     "--yes")
    assert result.code == 2 and "cannot write .gif live — name the output .mp4 (H.264) or .avi" in result.err
