"""How fast the sample feeder prepares training batches (must outpace the GPU) and how long the face cache takes.

    .venv/bin/python benchmarks/bench_samples.py [--faces N] [--resolution 128] [--batch-size 16] [--workers 0 2]

Faces are extracted from the demo src video once (every few frames, full face, 256 px files) into a temp folder.
Prints: cache build seconds and faces/s, then per worker count batches/s and faces/s (both sides counted once).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from facelab.extract.extractor import extract_faces
from facelab.extract.frames import video_frames
from facelab.io import demo_media
from facelab.io.faceimage import write_face
from facelab.train.samples import FaceCache, FeedSettings, SampleFeeder


def make_faceset(folder: Path, count: int) -> None:
    video = demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO)
    written = 0
    while written < count:  # loop over the video again when it has fewer usable frames than asked
        for index, frame in enumerate(video_frames(video)):
            if index % 4:
                continue
            for image, meta in extract_faces(frame.image, face_type="full", image_size=256, max_faces=1):
                write_face(folder / f"{written:05d}.jpg", image, meta)
                written += 1
            if written >= count:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=120)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_faceset(folder, args.faces)
        start = time.perf_counter()
        cache = FaceCache.build(folder, "full", args.resolution)
        seconds = time.perf_counter() - start
        print(f"cache: {len(cache)} faces of 256 px -> {args.resolution} px in {seconds:.2f} s "
              f"({len(cache) / seconds:.0f} faces/s)")
        try:
            for workers in args.workers:
                feeder = SampleFeeder(cache, cache, FeedSettings(args.batch_size), workers=workers, seed=0)
                try:
                    feeder.next()  # workers started
                    start = time.perf_counter()
                    for _ in range(args.batches):
                        feeder.next()
                    seconds = time.perf_counter() - start
                finally:
                    feeder.close()
                rate = args.batches / seconds
                print(f"feeder workers={workers}: {rate:.1f} batches/s of {args.batch_size}+{args.batch_size} faces at "
                      f"{args.resolution} px ({rate * args.batch_size * 2:.0f} faces/s)")
        finally:
            cache.close()


if __name__ == "__main__":
    main()
