"""Time `facelab sort` on 2,000 aligned 256-px faces (goal: each method ≤ 30 s on 2 CPU cores).

The faces are real: extracted from the demo videos, then augmented (mirror, brightness, contrast, blur,
noise) to reach the count. Run: `.venv/bin/python benchmarks/bench_sort.py [--count 2000] [--methods ...]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_METHODS = ["blur", "hist", "face-yaw", "final"]


def real_faces(size: int) -> list:
    """(image, meta) of faces from frames spread over both demo videos."""
    import av

    from facelab.extract import extract_faces
    from facelab.io import demo_media

    faces = []
    for entry, count in ((demo_media.DEMO_SRC_VIDEO, 30), (demo_media.DEMO_DST_VIDEO, 10)):
        path = demo_media.packaged_file(entry)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            wanted = set(np.linspace(0, stream.frames - 1, count).round().astype(int).tolist())
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    faces += extract_faces(frame.to_ndarray(format="bgr24"), image_size=size,
                                           source_filename=f"{path.stem}_{i:05d}.png")
    return faces


def augment(image: np.ndarray, meta, rng: np.random.Generator, n: int):
    """A new (image, meta): maybe mirrored (landmarks and yaw follow), with light/contrast/blur/noise changes."""
    import copy

    import cv2

    from facelab.geometry.landmarks68 import mirror_landmarks
    from facelab.geometry.pose import pose_from_landmarks

    meta = copy.deepcopy(meta)
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        meta.landmarks = mirror_landmarks(meta.landmarks, meta.image_size)
        meta.pitch, meta.yaw, meta.roll = pose_from_landmarks(meta.landmarks)
    out = image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    sigma = rng.choice([0, 0, 0.8, 1.5, 2.5])
    if sigma:
        out = cv2.GaussianBlur(out, (0, 0), float(sigma))
    out += rng.normal(0, rng.uniform(0, 4), out.shape)
    meta.source_filename = f"aug{n:05d}.png"
    return np.clip(out, 0, 255).astype(np.uint8), meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--final-count", type=int, default=1000, help="what `final` keeps (run last)")
    args = parser.parse_args()

    from facelab.faceset.sort import sort_faceset
    from facelab.io.faceimage import write_face

    print(f"CPU cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    base = real_faces(args.size)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "aligned"
        folder.mkdir()
        for n in range(args.count):
            image, meta = base[n % len(base)]
            image, meta = augment(image, meta, rng, n)
            write_face(folder / f"aug{n:05d}_0.jpg", image, meta)
        print(f"made {args.count} faces of {args.size} px from {len(base)} real ones in "
              f"{time.perf_counter() - t0:.1f} s")
        # `final` discards faces, so it runs after the others.
        for method in sorted(args.methods, key=lambda m: m == "final"):
            t = time.perf_counter()
            result = sort_faceset(folder, method, {"final_count": args.final_count})
            print(f"sort --by {method:12s} {len(result.kept) + len(result.trashed):5d} faces: "
                  f"{time.perf_counter() - t:6.2f} s  ({len(result.trashed)} to trash)")


if __name__ == "__main__":
    main()
