"""Merge tuner speed: how long the live preview takes to answer an option change, at 640×360 on the CPU.

    .venv/bin/python benchmarks/bench_merge_tuner.py [--workspace WS] [--repeats 20]

Runs the real UI server (the page's own endpoint over HTTP) on a workspace with a trained model and dst faces;
without --workspace it builds the demo workspace the UI tests use (15 dst frames at 640×360, a 64 px SAE) in a
temporary folder first (~30 s). The frame's prediction is made once (it does not depend on the merge options), then
each option set is rendered ``--repeats`` times: the median server time (merge maths + JPEG encode) and the median
round trip as the browser sees it (request, render, response) are printed. The page's target is < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the CPU (merging is CPU work anyway; this keeps prediction there)

import cv2
import httpx
import torch

OPTION_SETS = {
    "defaults (seamless, rct, auto mask)": {},
    "overlay, rct": {"mode": "overlay"},
    "overlay, dst mask, erode 30, blur 40": {"mode": "overlay", "mask": "dst", "erode": 30, "blur": 40},
    "seamless, dst mask, blur 40": {"mask": "dst", "blur": 40},
    "hist-match, threshold 200": {"mode": "hist-match", "hist_match_threshold": 200},
    "seamless-hist-match, lct": {"mode": "seamless-hist-match", "colour_transfer": "lct"},
    "overlay, mkl": {"mode": "overlay", "colour_transfer": "mkl"},
    "overlay, sot": {"mode": "overlay", "colour_transfer": "sot"},
    "overlay, face scale 10, degrade 50": {"mode": "overlay", "face_scale": 10, "degrade_colour": 50},
    "raw-mask": {"mode": "raw-mask"},
}
TOKEN = "bench-merge-tuner"


def demo_workspace(root: Path) -> Path:
    from facelab.pipeline import DemoSettings, run_demo

    run_demo(root, DemoSettings(minutes=5, dst_seconds=0.5, src_seconds=2.0, iterations=4, device="cpu",
                                train_workers=0))
    return root


def render(client: httpx.Client, model: str, frame: str, options: dict) -> tuple[float, float, float]:
    """(server render ms, prediction ms, round trip ms) of one preview."""
    start = time.perf_counter()
    response = client.post("/api/merge/preview", json={"model": model, "frame": frame, "options": options})
    total = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return float(response.headers["X-Render-Ms"]), float(response.headers["X-Predict-Ms"]), total


def bench(workspace: Path, repeats: int) -> None:
    from facelab.web.server import start

    running = start(workspace, "127.0.0.1", 0, TOKEN, background=True, announce=lambda _url: None)
    try:
        with httpx.Client(base_url=running.url.split("/?")[0], headers={"X-Facelab-Token": TOKEN},
                          timeout=120) as client:
            for _ in range(100):  # the server thread needs a moment to start answering
                try:
                    state = client.get("/api/merge/state").json()
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            model, frame = state["models"][0], state["frames"][0]
            image = cv2.imread(str(workspace / frame["rel"]))
            print(f"model {model}, frame {frame['name']} ({image.shape[1]}×{image.shape[0]}, {frame['faces']} "
                  f"face(s)), medians of {repeats} renders per option set")
            _, predict_ms, first_ms = render(client, model, frame["name"], {})
            print(f"first render (loads the model, predicts the frame): {first_ms:.0f} ms "
                  f"(prediction {predict_ms:.0f} ms)")
            worst = 0.0
            for name, options in OPTION_SETS.items():
                render(client, model, frame["name"], options)  # warm-up (e.g. the first seamless solve)
                runs = [render(client, model, frame["name"], options) for _ in range(repeats)]
                server = statistics.median(r[0] for r in runs)
                trip = statistics.median(r[2] for r in runs)
                worst = max(worst, trip)
                print(f"  {name:40s} server {server:6.1f} ms   round trip {trip:6.1f} ms")
            print(f"slowest option set: {worst:.0f} ms round trip — target < 1000 ms: "
                  f"{'met' if worst < 1000 else 'MISSED'}")
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", type=Path, default=None, help="a workspace with a model and dst faces")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}, "
          f"load average {os.getloadavg()[0]:.1f}, prediction on {'cuda' if torch.cuda.is_available() else 'cpu'}")
    if args.workspace is not None:
        bench(args.workspace, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench(demo_workspace(Path(tmp) / "workspace"), args.repeats)


if __name__ == "__main__":
    main()
