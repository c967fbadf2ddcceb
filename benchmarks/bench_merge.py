"""Merge speed: ms per frame for overlay and seamless (± rct) at 640×360 and 1920×1080, without and with the
model's prediction, and a whole folder merged through the threaded pipeline.

    .venv/bin/python benchmarks/bench_merge.py [--repeats 10]

The dst frame is the demo dst video's first frame (a man, face ≈ 150 px wide at 640×360), upscaled for 1080p
(face ≈ 450 px). The "prediction" is a real SAE at the demo's size (64 px) and at SAE's default 128 px, untrained:
its cost does not depend on its weights. The mask is the dst hull (an untrained learned mask would
cover the whole square and overstate the blending cost).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from facelab.extract.extractor import extract_faces
from facelab.extract.frames import video_frames
from facelab.io import demo_media
from facelab.io.faceimage import write_face
from facelab.merge.merger import PredictedFace, merge_frame, model_face_from_frame
from facelab.merge.options import resolve
from facelab.merge.runner import MergePaths, merge_folder
from facelab.options import validate
from facelab.train.swap import Swapper
from facelab.train.models.build import build_model, option_specs


def swapper(resolution: int, small: bool) -> Swapper:
    opts = {"resolution": resolution, "face_type": "full", "learn_mask": True}
    if small:
        opts |= {"ae_dims": 128, "e_ch_dims": 21, "d_ch_dims": 11, "mask_dims": 16}
    model = build_model("SAE", validate(option_specs("SAE"), opts)).eval()
    return Swapper(model, torch.device("cpu"), "SAE", 0)


def timed(fn, repeats: int) -> float:
    """Median ms of ``repeats`` calls after a warm-up (the median shrugs off other jobs on a shared machine)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}, "
          f"load average {os.getloadavg()[0]:.1f} (medians of {args.repeats} runs)")
    frame = next(video_frames(demo_media.packaged_file(demo_media.DEMO_DST_VIDEO))).image
    models = {"SAE-64 (demo)": swapper(64, True), "SAE-128 (default dims)": swapper(128, False)}
    for width, height in ((640, 360), (1920, 1080)):
        image = cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC)
        (_, meta), = extract_faces(image, image_size=256, max_faces=1)
        for name, sw in models.items():
            r = sw.resolution
            matrix = model_face_from_frame(meta, "full", r)
            crop = cv2.warpAffine(image, matrix, (r, r))[None]
            pred, pmask, dmask = sw.predict(crop)
            face = PredictedFace(meta, matrix, pred[0], pmask[0], dmask[0])
            predict_ms = timed(lambda: sw.predict(crop), args.repeats)
            for mode in ("overlay", "seamless"):
                for transfer in ("none", "rct"):
                    options = resolve({"mode": mode, "colour_transfer": transfer, "mask": "dst", "blur": 20}).base
                    ms = timed(lambda: merge_frame(image, [face], options, True), args.repeats)
                    print(f"{width}x{height} {name:24s} {mode:9s} {transfer:4s}: {ms:6.1f} ms/frame without "
                          f"prediction, {ms + predict_ms:6.1f} ms with it (predict {predict_ms:.1f} ms/face)")
    # The whole pipeline: 30 frames from disk to labelled PNGs on disk, prediction batched, blending threaded.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = MergePaths(root / "f", root / "f/aligned", root / "f/merged", root / "f/merged_mask")
        paths.aligned.mkdir(parents=True)
        for number, item in enumerate(video_frames(demo_media.packaged_file(demo_media.DEMO_DST_VIDEO)), 1):
            cv2.imwrite(str(paths.frames / f"{number:05d}.png"), item.image)
            for i, (img, meta) in enumerate(extract_faces(item.image, image_size=128, max_faces=1,
                                                          source_filename=f"{number:05d}.png")):
                write_face(paths.aligned / f"{number:05d}_{i}.jpg", img, meta)
            if number == 30:
                break
        for mode in ("overlay", "seamless"):
            report = merge_folder(paths, models["SAE-64 (demo)"], resolve({"mode": mode, "colour_transfer": "rct", "mask": "dst"}),
                                  overwrite=True)
            print(f"pipeline 640x360 {mode:9s} rct, SAE-64, {report.frames} frames: "
                  f"{report.seconds / report.frames * 1000:.1f} ms/frame (read, predict, blend, write PNG)")


if __name__ == "__main__":
    main()
