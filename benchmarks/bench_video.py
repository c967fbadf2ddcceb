"""Frames/s of facelab's video steps beside plain ffmpeg doing the same job, in the same run.

    .venv/bin/pip install -e ".[bench]"     # imageio-ffmpeg: an ffmpeg binary from PyPI, for the comparison only
    .venv/bin/python benchmarks/bench_video.py [--repeat 2]

Jobs, on the demo src video (472 frames, 640×360, H.264 + AAC):
  extract png / extract jpg   every frame into 00001.png … (ffmpeg: default PNG settings, and -compression_level 1
                              to match facelab's; JPEG -q:v 2 ≈ quality 95)
  assemble mp4                472 PNG frames + the video's sound → H.264 yuv420p 16 Mbit/s, preset medium, AAC copied
Each facelab run is a child process, so its peak memory (max RSS) is its own: it should not grow with video
length (the 72-frame dst video is run too). Best of ``--repeat`` runs; the machine may be shared, so compare
only numbers from one run (the two sides take turns). Goal: facelab within 1.5× of ffmpeg's time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facelab.io import demo_media

CHILD = """
import json, resource, sys, time
from facelab.io import video
job, source, out, ext = sys.argv[1:5]
start = time.perf_counter()
if job == "extract":
    n = video.extract_frames(source, out, ext=ext)
else:
    n = video.assemble(ext, source, out, kind="mp4", bitrate_mbps=16) and len(video.list_frames(ext))
print(json.dumps({"seconds": time.perf_counter() - start, "frames": n,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def facelab(job: str, source: Path, out: Path, ext: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, job, str(source), str(out), ext], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ffmpeg(args: list[str]) -> float:
    import imageio_ffmpeg

    start = time.perf_counter()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)
    return time.perf_counter() - start


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def best_pair(runs: int, ours, theirs) -> tuple[dict, float]:
    """Best of ``runs`` for each side, the two sides taking turns so both meet the same machine load."""
    pairs = [(ours(), theirs()) for _ in range(runs)]
    return min((p[0] for p in pairs), key=lambda r: r["seconds"]), min(p[1] for p in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        sys.exit("install the comparison ffmpeg first: .venv/bin/pip install -e '.[bench]'")
    src = demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO)
    dst = demo_media.packaged_file(demo_media.DEMO_DST_VIDEO)
    frames = 472
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ext, ff_opts in (("png", [[], ["-compression_level", "1"]]), ("jpg", [["-q:v", "2"]])):
            for opts in ff_opts:
                ours, theirs = best_pair(
                    args.repeat, lambda: facelab("extract", src, fresh(tmp / "ours"), ext),
                    lambda: ffmpeg(["-i", str(src), *opts, "-start_number", "1",
                                    str(fresh(tmp / "ff") / f"%05d.{ext}")]))
                rows.append((f"extract {ext} {' '.join(opts)}".strip(), ours, theirs))
        short = facelab("extract", dst, fresh(tmp / "short"), "png")
        print(f"peak memory: extract png of 72 frames {short['max_rss_mb']:.0f} MB, "
              f"of 472 frames {rows[0][1]['max_rss_mb']:.0f} MB")
        pngs = fresh(tmp / "frames")
        facelab("extract", src, pngs, "png")
        ff_assemble = ["-framerate", "24000/1001", "-i", str(pngs / "%05d.png"), "-i", str(src), "-map", "0:v",
                       "-map", "1:a", "-c:v", "libx264", "-preset", "medium", "-b:v", "16M", "-pix_fmt", "yuv420p",
                       "-c:a", "copy", "-shortest", str(tmp / "ff.mp4")]
        ours, theirs = best_pair(args.repeat, lambda: facelab("assemble", src, tmp / "ours.mp4", str(pngs)),
                                 lambda: ffmpeg(ff_assemble))
        rows.append(("assemble mp4", ours, theirs))
        print(f"peak memory: assemble 472 frames {ours['max_rss_mb']:.0f} MB")
    print(f"\n{'job':34} {'facelab fps':>12} {'ffmpeg fps':>11} {'time ratio':>11}")
    for name, ours, theirs in rows:
        print(f"{name:34} {frames / ours['seconds']:12.1f} {frames / theirs:11.1f} {ours['seconds'] / theirs:10.2f}×")


if __name__ == "__main__":
    main()
