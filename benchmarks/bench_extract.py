"""Extraction speed: the 472-frame 640×360 src demo video (and the same video scaled to 1920×1080) to aligned
JPGs, end to end, per detector. Prints frames/s and ms per frame for each stage.

    .venv/bin/python benchmarks/bench_extract.py [--detectors retinaface,mtcnn,hog] [--frames N] [--no-1080p]

Stage times are sums over frames divided by the frame count. Decoding runs on its own thread and encoding
in a thread pool, overlapping detection, so the stages add up to more than the end-to-end time per frame.
Goal on 2 CPU cores with retinaface: >= 25 frames/s at 640×360, >= 8 frames/s at 1080p.
"CPU ms/frame" is the process's CPU time (all threads) per frame: on an idle 2-core machine the end-to-end
rate lies between 1000/CPU (no overlap) and 2000/CPU (both cores busy) frames/s, whatever else ran here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from facelab.extract.frames import video_frames
from facelab.extract.runner import STAGES, extract_video
from facelab.io import demo_media


def scaled_copy(video: Path, out: Path, width: int, height: int, frames: int) -> Path:
    """Re-encode the first ``frames`` frames of ``video`` at width×height (H.264, near-lossless)."""
    import av
    import cv2

    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "16"}
        for _, frame in zip(range(frames), video_frames(video)):
            big = cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def run(video: Path, detector: str, frames: int, workdir: Path) -> None:
    wanted = [f"{i:05d}.png" for i in range(1, frames + 1)]
    aligned = workdir / f"aligned_{detector}_{video.stem}"
    start, cpu_start = time.perf_counter(), time.process_time()
    report = extract_video(video, aligned, only=wanted if frames < 472 else None, detector=detector,
                           face_type="full", image_size=256, image_format="jpg", jpeg_quality=95, max_faces=0,
                           min_face_size=0, rotate_retry=False, device="cpu")
    wall = time.perf_counter() - start
    cpu_ms = 1000 * (time.process_time() - cpu_start) / report.frames
    per_stage = "  ".join(f"{s} {1000 * report.stage_seconds.get(s, 0.0) / report.frames:6.1f}" for s in STAGES)
    print(f"{video.stem:>14} {detector:>10}: {report.frames / wall:6.1f} frames/s end to end "
          f"({report.frames} frames, {report.faces} faces, {wall:5.1f} s) | ms/frame: {per_stage} | "
          f"CPU {cpu_ms:.1f} ms/frame", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default="retinaface,mtcnn,hog")
    parser.add_argument("--frames", type=int, default=472, help="frames of the video to extract (472: all)")
    parser.add_argument("--no-1080p", action="store_true", help="skip the 1920×1080 copy")
    args = parser.parse_args()
    src = demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        videos = [src]
        if not args.no_1080p:
            videos.append(scaled_copy(src, workdir / "src_1080p.mp4", 1920, 1080, args.frames))
        for video in videos:
            for detector in args.detectors.split(","):
                run(video, detector, args.frames, workdir)
    print(f"load average {os.getloadavg()[0]:.1f} at end (other work on this machine slows every number)")


if __name__ == "__main__":
    main()
