"""`facelab bench live`: the live stream on the demo dst clip, looped — sustained frames/s, latency (median, p95),
dropped frames, memory over the stream, and the swapped face's jitter against `facelab merge`'s alignment.

The stream runs as `facelab live` runs it (the clip read at its frame rate, as a camera delivers it; frames the
swap cannot keep up with are dropped). Jitter (``facelab.live.smoothing.jitter``) is measured on one pass over
every frame of the clip, for the alignment merge uses (a detection and two-pass landmarks per frame, as
`facelab extract` makes them), for live tracking without smoothing and for live at the chosen smoothing;
``offset`` is how far the live square lies from merge's (mean corner distance, % of the face's size): smoothing
that lagged behind the face would show there.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facelab.bench.measure import current_rss_mib, machine_info
from facelab.extract.frames import video_frames
from facelab.geometry.alignment import face_square_in_frame
from facelab.io import demo_media
from facelab.live.options import LIVE_OPTIONS, session_args
from facelab.live.session import LiveSwap, load_live_swapper, model_threads
from facelab.live.smoothing import jitter
from facelab.live.sources import open_source
from facelab.live.stream import run_stream
from facelab.options import validate

JSON_NAME = "bench_live.json"
RSS_EVERY = 10.0  # seconds between memory samples
WARMUP_FRAMES = 3


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used, every thread counted."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_swapper(model_dir: Path | None, model_name: str | None, device: str):
    """The model the bench swaps with: the one in ``model_dir`` (a folder or an exported file), else the demo's
    SAE freshly initialised (the speed of a network does not depend on what its weights learned)."""
    if model_dir is not None:
        return load_live_swapper(model_dir, model_name, device)
    import torch

    from facelab.device import resolve_devices
    from facelab.pipeline import MODEL_NAME, MODEL_OPTIONS
    from facelab.train.models.build import build_model, option_specs
    from facelab.train.swap import Swapper

    dev = resolve_devices(device)[0]
    if dev.type == "cpu":
        torch.set_num_threads(model_threads())  # as `load_live_swapper` does for a saved model
    torch.manual_seed(0)
    options = validate(option_specs(MODEL_NAME), MODEL_OPTIONS)
    return Swapper(build_model(MODEL_NAME, options).to(dev).eval(), dev, f"{MODEL_NAME} (untrained)", 0)


def merge_alignments(frames: list[np.ndarray], face_type: str, size: int, device: str) -> list[np.ndarray | None]:
    """Per frame, the (2, 3) frame → model square matrix `facelab merge` would use for the largest face (faces
    extracted as the demo extracts them), or None where no face is found."""
    from facelab.extract.extractor import Extractor
    from facelab.merge.merger import model_face_from_frame
    from facelab.pipeline import EXTRACT_SETTINGS

    extractor = Extractor(device=device, **{**EXTRACT_SETTINGS.extractor_args(), "face_type": face_type})
    out = []
    for frame in frames:
        found = extractor.faces(frame)
        out.append(model_face_from_frame(found[0][1], face_type, size) if found else None)
    return out


def live_alignments(live: LiveSwap, frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per frame, the matrix the live swap aligned its first face with (None where it swapped none)."""
    live.reset()
    out = []
    for frame in frames:
        faces = live.prepare(frame).faces
        out.append(faces[0].face_from_frame if faces else None)
    return out


def runs_jitter(matrices: list[np.ndarray | None], size: int) -> float:
    """``jitter`` over the runs of consecutive frames that have a face, weighted by their lengths."""
    runs, run = [], []
    for m in [*matrices, None]:
        if m is None:
            if len(run) >= 3:
                runs.append(run)
            run = []
        else:
            run.append(m)
    if not runs:
        return float("nan")
    return float(np.average([jitter(r, size) for r in runs], weights=[len(r) - 2 for r in runs]))


def offset(matrices: list[np.ndarray | None], reference: list[np.ndarray | None], size: int) -> float:
    """Mean distance between the two alignments' square corners over frames where both have one, in % of the
    reference square's side."""
    values = []
    for m, ref in zip(matrices, reference):
        if m is not None and ref is not None:
            a, b = face_square_in_frame(m, size), face_square_in_frame(ref, size)
            values.append(100 * np.linalg.norm(a - b, axis=1).mean() / np.linalg.norm(b[1] - b[0]))
    return float(np.mean(values)) if values else float("nan")


def measure_jitter(swapper, frames: list[np.ndarray], merge_options: dict[str, Any], live_values: dict[str, Any],
                   device: str) -> dict[str, float]:
    """Jitter (% of face size) of merge's alignment, live without smoothing and live as set, and each live
    variant's offset from merge (%)."""
    size, out = swapper.resolution, {}
    merge = merge_alignments(frames, swapper.face_type, size, device)
    out["merge_jitter"] = runs_jitter(merge, size)
    for name, smoothing in (("live_unsmoothed", 0.0), ("live", live_values["smoothing"])):
        live = _session(swapper, merge_options, {**live_values, "smoothing": smoothing}, device)
        matrices = live_alignments(live, frames)
        out[f"{name}_jitter"] = runs_jitter(matrices, size)
        out[f"{name}_offset"] = offset(matrices, merge, size)
    return out


def _session(swapper, merge_options: dict[str, Any], live_values: dict[str, Any], device: str) -> LiveSwap:
    return LiveSwap(swapper, merge_options, device=device, **session_args(live_values))


def run_live_bench(minutes: float, *, model_dir: Path | None = None, model_name: str | None = None,
                   video: Path | None = None, device: str = "cpu", merge_options: dict[str, Any] | None = None,
                   live_options: dict[str, Any] | None = None,
                   on_line: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Stream ``video`` (default: the demo dst clip) looped for ``minutes`` through the live swap and measure it;
    returns the JSON-able report (``format_report`` prints it)."""
    from facelab.pipeline import MERGE_OPTIONS as DEMO_MERGE

    video = Path(video) if video is not None else demo_media.packaged_file(demo_media.DEMO_DST_VIDEO)
    merge_options = {**DEMO_MERGE, **(merge_options or {})}
    live_values = validate(LIVE_OPTIONS, live_options or {})
    swapper = bench_swapper(model_dir, model_name, device)
    frames = [f.image for f in video_frames(video)]
    live = _session(swapper, merge_options, live_values, device)
    for frame in frames[:WARMUP_FRAMES]:  # first calls build kernels and thread pools: not part of a stream
        live.process(frame)
    report: dict[str, Any] = {"machine": machine_info(), "video": str(video), "model": swapper.name,
                              "minutes": minutes, "merge_options": live.options, "live_options": live_values}
    rss = [(0.0, current_rss_mib())]

    def sample(stats) -> None:
        if stats.seconds - rss[-1][0] >= RSS_EVERY:
            rss.append((stats.seconds, current_rss_mib()))
            on_line(f"  {stats.seconds / 60:5.1f} min: {stats.fps:.1f} frames/s, latency {stats.latency(50):.0f} "
                    f"ms, {stats.dropped} dropped, RSS {rss[-1][1]:.0f} MiB")

    on_line(f"Streaming {video.name} looped for {minutes:g} min at its frame rate ({swapper.name}).")
    cpu = cpu_seconds()
    stream = run_stream(live, open_source(video), None, realtime=live_values["realtime"],
                        queue_size=live_values["queue"], loop=True, max_seconds=minutes * 60, on_stats=sample)
    cpu = cpu_seconds() - cpu
    rss.append((stream.seconds, current_rss_mib()))
    report["stream"] = stream.summary()
    # CPU time per swapped frame depends far less on other work on the machine than wall time does: it says what
    # the same cores would sustain if the stream had them to itself.
    cpu_ms = 1000 * cpu / max(stream.frames_out, 1)
    report["stream"].update(cpu_ms_per_frame=cpu_ms, fps_if_cores_free=(os.cpu_count() or 1) * 1000 / cpu_ms)
    report["rss_mib"] = {"start": rss[0][1], "end": rss[-1][1], "max": max(r for _, r in rss), "samples": rss}
    on_line("Measuring jitter on one pass over every frame (merge's alignment, live unsmoothed, live).")
    report["jitter"] = measure_jitter(swapper, frames, merge_options, live_values, device)
    report["machine"]["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report["time_end"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as text lines."""
    s, j, m, rss = report["stream"], report["jitter"], report["machine"], report["rss_mib"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in s["stage_median_ms"].items())
    return [
        f"live {Path(report['video']).name}, {report['model']}, {report['minutes']:g} min: {s['fps']:.1f} frames/s "
        f"sustained, latency median {s['latency_median_ms']:.0f} ms, p95 {s['latency_p95_ms']:.0f} ms",
        f"  frames in {s['frames_in']}, out {s['frames_out']}, dropped {s['dropped']} "
        f"({100 * s['dropped'] / max(s['frames_in'], 1):.1f} %); faces swapped {s['faces']}",
        f"  median ms per frame: {stages}; CPU {s['cpu_ms_per_frame']:.0f} ms per frame (all threads), i.e. "
        f"{s['fps_if_cores_free']:.1f} frames/s if the {m['cpu_cores']} cores were free",
        f"  RSS {rss['start']:.0f} MiB at start, {rss['end']:.0f} MiB at end, {rss['max']:.0f} MiB max",
        f"  jitter (% of face size per frame): merge {j['merge_jitter']:.3f}, live unsmoothed "
        f"{j['live_unsmoothed_jitter']:.3f}, live {j['live_jitter']:.3f} (smoothing "
        f"{report['live_options']['smoothing']:g}); offset from merge: unsmoothed {j['live_unsmoothed_offset']:.2f} "
        f"%, live {j['live_offset']:.2f} %",
        f"  {m['cpu_cores']} CPU cores, {m['torch_threads']} torch threads, load average {m['load_average']:.1f} at "
        f"start, {m.get('load_average_end') or float('nan'):.1f} at end",
    ]
