"""`facelab bench export`: ms per face at batch 1, the exported graph in ONNX Runtime (CPU) against the PyTorch
model it came from — same faces, same run, calls interleaved so both see the same load on the machine.

The model is a trained one (``--model-dir``) or the demo's SAE freshly initialised (speed does not depend on what
the weights learned). It is exported to a temp folder (never into the model's folder). Faces: real aligned
faces (``export.check.check_faces``: a workspace's dst faces, else the packaged photos), cycled. Per path: wall ms
per face (median, quartiles) and CPU ms per face (process CPU time over the timed calls, which other work on the
machine disturbs less than wall time), both paths on the same number of threads (one, then every core), and the
largest difference of the two answers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from facelab.bench.live import bench_swapper, cpu_seconds
from facelab.bench.measure import machine_info
from facelab.export.check import check_faces, max_abs_difference
from facelab.export.exporter import graph_for, trace, with_metadata
from facelab.export.formats import FORMATS, ExportedInfo, metadata_props
from facelab.export.options import DEFAULT_OPSET
from facelab.errors import OptionError
from facelab.export.runtime import OnnxSwapper, cpu_threads, is_exported_file
from facelab.train.swap import Swapper

JSON_NAME = "bench_export.json"
WARMUP = 3
PATHS = ("onnxruntime", "pytorch")


def export_to(swapper, folder: Path) -> Path:
    """``swapper``'s model exported as ``.dfm`` into ``folder`` (the graph `facelab export` writes)."""
    names = FORMATS["dfm"]
    graph = graph_for(swapper.model, names)
    info = ExportedInfo(swapper.name, swapper.face_type, swapper.resolution, swapper.learn_mask, swapper.iteration,
                        graph.morph, "dfm")
    path = folder / "bench.dfm"
    path.write_bytes(with_metadata(trace(graph, names, swapper.resolution, DEFAULT_OPSET), metadata_props(info)))
    return path


def time_calls(runs: dict[str, Callable[[np.ndarray], Any]], faces: np.ndarray, count: int) -> dict[str, dict]:
    """Per path: wall ms of each batch-1 call and CPU ms per call, the paths taking turns on each face."""
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu = dict.fromkeys(runs, 0.0)
    for i in range(count):
        face = faces[i % len(faces)][None]
        for name, run in runs.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            run(face)
            wall[name].append(1000 * (time.perf_counter() - t0))
            cpu[name] += 1000 * (cpu_seconds() - c0)
    return {name: {"median_ms": float(np.median(w)), "p25_ms": float(np.percentile(w, 25)),
                   "p75_ms": float(np.percentile(w, 75)), "cpu_ms": cpu[name] / count, "calls": count}
            for name, w in wall.items()}


def thread_counts() -> list[int]:
    """The CPU thread counts both paths are timed at: one, and every core this process may use."""
    return sorted({1, cpu_threads()})


def run_export_bench(count: int = 40, *, model_dir: Path | None = None, model_name: str | None = None,
                     aligned: Path | None = None, on_line: Callable[[str], None] = lambda line: None
                     ) -> dict[str, Any]:
    """Time ``count`` batch-1 predictions per path (after ``WARMUP``) at each of ``thread_counts()`` (both paths
    on the same number of threads); returns the JSON-able report."""
    if model_dir is not None and is_exported_file(model_dir):
        raise OptionError("the export bench exports the model itself: give its model folder", path=model_dir,
                          fix="use --model-dir with the folder the model was trained in")
    swapper = Swapper.load(model_dir, model_name, "cpu") if model_dir is not None else bench_swapper(None, None, "cpu")
    faces = check_faces(aligned, swapper.face_type, swapper.resolution)
    torch_threads, timings, difference = torch.get_num_threads(), {}, 0.0
    try:
        with tempfile.TemporaryDirectory(prefix="facelab-bench-export-") as tmp:
            on_line(f"Exporting {swapper.name} ({swapper.face_type}, {swapper.resolution} px) to a temp folder.")
            path = export_to(swapper, Path(tmp))
            for threads in thread_counts():
                torch.set_num_threads(threads)
                onnx = OnnxSwapper.load(path, "cpu", threads=threads)
                pairs = zip(onnx.predict(faces.faces), swapper.predict(faces.faces))
                difference = max([difference] + [max_abs_difference(a, b) for a, b in pairs if b is not None])
                runs = {"onnxruntime": onnx.predict, "pytorch": swapper.predict}
                time_calls(runs, faces.faces, WARMUP)
                on_line(f"Timing {count} faces at batch 1 per path on {threads} thread(s), taking turns "
                        f"({faces.source}).")
                timing = time_calls(runs, faces.faces, count)
                timing["speedup_wall"] = timing["pytorch"]["median_ms"] / timing["onnxruntime"]["median_ms"]
                timing["speedup_cpu"] = timing["pytorch"]["cpu_ms"] / timing["onnxruntime"]["cpu_ms"]
                timings[str(threads)] = timing
    finally:
        torch.set_num_threads(torch_threads)
    return {"machine": machine_info(), "model": swapper.name, "face_type": swapper.face_type,
            "resolution": swapper.resolution, "faces": faces.source, "batch": 1, "max_abs_difference": difference,
            "threads": timings}


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as text lines."""
    m = report["machine"]
    lines = [f"export bench: {report['model']} ({report['face_type']}, {report['resolution']} px), batch 1, "
             f"{report['faces']}; max abs difference {report['max_abs_difference']:.1e}; {m['cpu_cores']} cores, "
             f"load average {m['load_average']:.1f}"]
    for threads, timing in report["threads"].items():
        for name in PATHS:
            p = timing[name]
            lines.append(f"  {threads} thread(s) {name:<12} {p['median_ms']:7.2f} ms/face median (IQR "
                         f"{p['p25_ms']:.2f}-{p['p75_ms']:.2f}), CPU {p['cpu_ms']:.2f} ms/face, {p['calls']} calls")
        lines.append(f"  {threads} thread(s): onnxruntime {timing['speedup_wall']:.2f}x faster by wall time, "
                     f"{timing['speedup_cpu']:.2f}x by CPU time")
    return lines
