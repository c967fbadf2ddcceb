"""`facelab bench xseg`: how fast XSeg is applied and used in merge, and (``--accuracy``, in ``xseg_accuracy``)
how well it segments real faces with real-looking occluders.

Speed, on the first dst demo frames extracted as whole-face 256 px faces, with the default XSeg (freshly
initialised: speed does not depend on what the weights learned):
- ``xseg apply`` end to end (faces/s wall and CPU-ms per face), and each stage alone, one face at a time:
  decode, net forward (in batches of 16), mask PNG encode, metadata write (temp file, fsync, rename);
- merge of the same frames with ``--mask learned`` against ``seg-dst`` read from the applied masks and ``seg-dst``
  computed on the fly (the time ratios; the goal is ≤ 1.3×).
Wall rates depend on what else runs on the machine: the load average is recorded beside them.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from facelab.bench.measure import machine_info
from facelab.bench.xseg_accuracy import FACE
from facelab.io import demo_media
from facelab.io.faceimage import list_faces, read_face, write_meta
from facelab.io.files import write_json_atomic
from facelab.progress import ProgressCallback, no_progress
from facelab.xseg.options import xseg_options

SPEED_FRAMES = (48, 12)  # (full, quick)
MERGE_ROUNDS = 2
GOALS = {"apply_faces_per_s": 30.0, "merge_ratio": 1.3, "iou": 0.92, "occluder_share": 0.03, "generic_iou": 0.85}
JSON_NAME = "xseg.json"
Line = Callable[[str], None]


def fresh_segmenter():
    """The default XSeg, freshly initialised (seed 0)."""
    from facelab.xseg.net import build_net
    from facelab.xseg.segmenter import Segmenter

    torch.manual_seed(0)
    return Segmenter(build_net(xseg_options({})), torch.device("cpu"), 0)


def stage_times(folder: Path, segmenter) -> dict[str, float]:
    """ms per face of each step of `xseg apply` alone (wall, one face at a time; the forward in batches of 16)."""
    from facelab.xseg.stored import KEY, encode_mask

    faces = list_faces(folder)
    times = {"decode": 0.0, "forward": 0.0, "encode": 0.0, "write": 0.0}
    loaded = []
    for path in faces:
        t = time.perf_counter()
        loaded.append(read_face(path))
        times["decode"] += time.perf_counter() - t
    images = np.stack([image for image, _ in loaded])
    segmenter.predict(images[:2])  # warm-up
    t = time.perf_counter()
    masks = np.concatenate([segmenter.predict(images[i : i + 16]) for i in range(0, len(images), 16)])
    times["forward"] = time.perf_counter() - t
    for path, (_, meta), mask in zip(faces, loaded, masks):
        t = time.perf_counter()
        meta.extra[KEY] = encode_mask(mask, 0)
        times["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        write_meta(path, meta)
        times["write"] += time.perf_counter() - t
    return {k: 1000 * v / len(faces) for k, v in times.items()}


def bench_apply(folder: Path, work: Path, segmenter) -> dict[str, Any]:
    """`xseg apply` on a copy of ``folder`` in ``work``: faces/s (wall), CPU-ms per face, and the stage times."""
    from facelab.xseg.apply import apply_folder

    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(folder, work)
    apply_folder(work, segmenter, batch_size=4)  # warm-up (the net's first calls are slower)
    shutil.rmtree(work)
    shutil.copytree(folder, work)
    wall, cpu = time.perf_counter(), time.process_time()
    report = apply_folder(work, segmenter)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stages = stage_times(work, segmenter)
    return {"faces": report.done, "faces_per_s": report.done / wall, "cpu_ms_per_face": 1000 * cpu / report.done,
            "stage_ms": stages, "torch_threads": torch.get_num_threads()}


def bench_merge_masks(root: Path, frames: int, segmenter, progress: ProgressCallback) -> dict[str, Any]:
    """Seconds to merge the first ``frames`` dst frames with the df64 SAE and ``--mask learned``, ``seg-dst``
    from applied masks, and ``seg-dst`` computed on the fly; and their ratios to ``learned``."""
    from facelab.bench.stages import MERGE_MODEL, _frames, _model
    from facelab.io.frames import encode_image
    from facelab.merge.options import resolve
    from facelab.merge.runner import MergePaths, merge_folder
    from facelab.train.swap import Swapper
    from facelab.xseg.apply import apply_folder, remove_folder

    paths = MergePaths(root / "frames", root / "aligned", root / "merged", root / "merged_mask")
    if not paths.frames.is_dir():
        paths.frames.mkdir(parents=True)
        for i, image in enumerate(_frames(demo_media.packaged_file(demo_media.DEMO_DST_VIDEO), frames), 1):
            (paths.frames / f"{i:05d}.png").write_bytes(encode_image(image, "png"))
    _extract_folder(paths, progress)
    swapper = Swapper(_model(MERGE_MODEL, torch.device("cpu")).eval(), torch.device("cpu"), "SAE", 0)
    seconds: dict[str, float] = {}
    for _ in range(MERGE_ROUNDS):  # in turns, the best of each: a burst of other work then hits all alike
        for label, mask in (("learned", "learned"), ("seg-dst applied", "seg-dst"), ("seg-dst on the fly", "seg-dst")):
            if label == "seg-dst applied":
                apply_folder(paths.aligned, segmenter)
            elif label == "seg-dst on the fly":
                remove_folder(paths.aligned)
            report = merge_folder(paths, swapper, resolve({"mask": mask}), overwrite=True, progress=progress,
                                  segmenter=segmenter)
            seconds[label] = min(seconds.get(label, float("inf")), report.seconds)
    return {"frames": frames, "seconds": seconds,
            "ratio": {k: v / seconds["learned"] for k, v in seconds.items() if k != "learned"}}


def _extract_folder(paths, progress: ProgressCallback) -> None:
    from facelab.extract.runner import extract_folder

    if not (paths.aligned / ".done").is_file():
        shutil.rmtree(paths.aligned, ignore_errors=True)
        extract_folder(paths.frames, paths.aligned, progress=progress, **FACE)
        (paths.aligned / ".done").write_text("ok")


def run_speed(bench_dir: Path, quick: bool = False, on_line: Line = print,
              progress: ProgressCallback = no_progress) -> dict[str, Any]:
    frames = SPEED_FRAMES[1 if quick else 0]
    root = Path(bench_dir) / "data" / f"dst_first{frames}"
    segmenter = fresh_segmenter()
    merge = bench_merge_masks(root, frames, segmenter, progress)
    on_line(f"merge {frames} frames: learned {merge['seconds']['learned']:.1f} s; "
            + ", ".join(f"{k} ×{v:.2f}" for k, v in merge["ratio"].items()))
    apply = bench_apply(root / "aligned", Path(bench_dir) / "apply_work", segmenter)
    on_line(f"xseg apply: {apply['faces_per_s']:.1f} faces/s, {apply['cpu_ms_per_face']:.1f} CPU-ms/face")
    shutil.rmtree(Path(bench_dir) / "apply_work", ignore_errors=True)
    return {"apply": apply, "merge": merge}


def run_bench(bench_dir: Path, *, accuracy: bool = False, minutes: float = 10.0, quick: bool = False,
              on_line: Line = print, progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """Speed (always) and accuracy (when asked) in ``bench_dir``; the report is also written to xseg.json there."""
    bench_dir = Path(bench_dir)
    bench_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine_info(), "quick": quick, "goals": GOALS}
    report["speed"] = run_speed(bench_dir, quick, on_line, progress)
    if accuracy:
        from facelab.bench.xseg_accuracy import run_accuracy

        report["accuracy"] = run_accuracy(bench_dir, minutes, quick, on_line=on_line, progress=progress)
    report["machine"]["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    write_json_atomic(bench_dir / JSON_NAME, report)
    return report


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as lines, each number beside its goal."""
    speed, lines = report["speed"], []
    apply, merge = speed["apply"], speed["merge"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in apply["stage_ms"].items())
    lines.append(f"xseg apply, {apply['faces']} whole-face 256 px faces: {apply['faces_per_s']:.1f} faces/s "
                 f"(goal ≥ {GOALS['apply_faces_per_s']:g}), {apply['cpu_ms_per_face']:.1f} CPU-ms/face on "
                 f"{apply['torch_threads']} torch threads; alone, ms/face: {stages}")
    for label, ratio in merge["ratio"].items():
        lines.append(f"merge {merge['frames']} frames with {label}: {ratio:.2f}× the time of learned "
                     f"({merge['seconds'][label]:.1f} s against {merge['seconds']['learned']:.1f} s; goal ≤ "
                     f"{GOALS['merge_ratio']:g}×)")
    accuracy = report.get("accuracy")
    if accuracy:
        for phase, goal in (("generic", GOALS["generic_iou"]), ("labelled", GOALS["iou"])):
            got, trained = accuracy[phase], accuracy[f"{phase}_training"]
            kinds = ", ".join(f"{k} {v['iou']:.3f}/{100 * v['occluder_share']:.1f} %" for k, v in got["by_kind"].items())
            lines.append(f"{phase} ({trained['iterations']} iterations, {trained['wall_s'] / 60:.1f} min wall): "
                         f"IoU {got['iou']:.3f} (goal ≥ {goal:g}), occluder pixels in the mask "
                         f"{100 * got['occluder_share']:.1f} % (goal ≤ {100 * GOALS['occluder_share']:g} %) on "
                         f"{got['faces']} test faces; by kind IoU/occluder: {kinds}")
    m = report["machine"]
    lines.append(f"{m['cpu_cores']} CPU cores, load average {m['load_average']:.1f} at start, "
                 f"{m.get('load_average_end') or float('nan'):.1f} at end" + (" — quick run" if report["quick"] else ""))
    return lines
