"""The demo, end to end: two real videos → facesets → a small SAE → merged frames → ``result.mp4`` with sound,
and ``result_compare.mp4`` (dst | result side by side).

Every step reads and writes the demo workspace and records itself in ``demo_state.json`` there, so running
the demo again skips what is finished (training continues until it has had its minutes).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from facelab import provenance
from facelab.extract.options import ExtractSettings
from facelab.io import demo_media
from facelab.io.files import write_json_atomic
from facelab.merge.options import resolve
from facelab.progress import ProgressCallback, no_progress
from facelab.workspace import DEMO_STATE, Workspace, create

log = logging.getLogger(__name__)

STATE_FILE = DEMO_STATE
RESULT_VIDEO, COMPARE_VIDEO = "result.mp4", "result_compare.mp4"
MODEL_NAME = "SAE"
# A small SAE that learns something in minutes on 2 CPU cores (the smallest widths SAE allows).
MODEL_OPTIONS: dict[str, Any] = {"resolution": 64, "face_type": "full", "learn_mask": True, "archi": "df",
                                 "ae_dims": 128, "e_ch_dims": 21, "d_ch_dims": 11, "mask_dims": 16,
                                 "batch_size": 4, "learning_rate": 3e-4, "random_warp": True}
# lr 3e-4, not SAE's 1e-4: better in two `facelab bench quality` runs (numbers at its config, sae-lr3-sharpen).
# Random warp goes off for the last 40 % of the training time (DeepFaceLab 2's late step, early): in one
# `facelab bench quality` run (10 min each, 2-core AVX2 CPU, held-out frames) this beat warp all along on every
# measure: SSIM 0.733 vs 0.644, sharpness 0.205 vs 0.170, distance to src 0.411 vs 0.443.
SHARPEN_FROM = 0.6
TRAIN_PHASES = ((SHARPEN_FROM, {"random_warp": False}),)
# The hull mask is reliable even when a few minutes of training leave the learned mask rough.
MERGE_OPTIONS: dict[str, Any] = {"mode": "seamless", "mask": "dst", "blur": 20, "colour_transfer": "rct"}
FACE_SIZE = 128
# How the demo (and `facelab bench quality`, on the same videos) extracts its facesets.
EXTRACT_SETTINGS = ExtractSettings.of(face_type=MODEL_OPTIONS["face_type"], image_size=FACE_SIZE, max_faces=1,
                                      min_face_size=40, device="cpu")


@dataclass(frozen=True)
class DemoSettings:
    """``minutes`` of training in all (fractions allowed); ``dst_seconds`` / ``src_seconds`` keep only the start
    of each video (None: all of it); ``iterations`` stops training earlier at that iteration count."""

    minutes: float = 10.0
    dst_seconds: float | None = None
    src_seconds: float | None = None
    iterations: int | None = None
    device: str = "auto"
    train_workers: int = -1


@dataclass
class DemoResult:
    workspace: Workspace
    result_video: Path
    iteration: int
    src_faces: int
    dst_faces: int
    merged_frames: int
    verification: provenance.Verification
    step_seconds: dict[str, float] = field(default_factory=dict)
    compare_video: Path | None = None  # dst | result side by side, with the dst's sound
    compare_verification: provenance.Verification | None = None


class _State:
    """The demo's progress record: which steps are done, and their numbers."""

    def __init__(self, root: Path):
        self.path = root / STATE_FILE
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def done(self, step: str) -> bool:
        return step in self.data

    def mark(self, step: str, **values: Any) -> None:
        self.data[step] = values
        write_json_atomic(self.path, self.data)


def _train(ws: Workspace, state: _State, settings: DemoSettings, progress: ProgressCallback) -> None:
    """Train for what is left of ``settings.minutes``, in the stretches TRAIN_PHASES makes (warp on, then off);
    each is recorded, so a stopped demo resumes in its phase (a longer --minutes turns warp on again until
    SHARPEN_FROM of the new total)."""
    from facelab.train.trainer import train_model

    total, wanted = settings.minutes * 60.0, settings.iterations
    options = dict(MODEL_OPTIONS)
    ends = [share for share, _ in TRAIN_PHASES] + [1.0]
    for k, end in enumerate(ends):
        if k:
            options.update(TRAIN_PHASES[k - 1][1])
        trained = state.data.get("train", {})
        done = trained.get("seconds", 0.0)
        if end * total - done <= 1.0 or (wanted is not None and trained.get("iteration", 0) >= wanted):
            continue
        start = time.perf_counter()
        result = train_model(ws.model, ws.aligned("src"), ws.aligned("dst"), MODEL_NAME, dict(options),
                             run_options={"workers": settings.train_workers}, max_iterations=wanted,
                             max_seconds=end * total - done, device=settings.device, progress=progress)
        state.mark("train", iteration=result.iteration, seconds=done + time.perf_counter() - start)


def run_demo(root: Path, settings: DemoSettings = DemoSettings(), *, on_step: Callable[[str], None] = log.info,
             progress: ProgressCallback = no_progress) -> DemoResult:
    """Run (or resume) the demo in the workspace ``root``; returns where everything is."""
    from facelab.extract.runner import extract_folder, extract_video
    from facelab.io import video
    from facelab.io.compare import write_compare
    from facelab.io.faceimage import list_faces
    from facelab.merge.runner import MergePaths, merge_folder
    from facelab.train.swap import Swapper

    ws = create(root)
    state = _State(ws.root)
    seconds: dict[str, float] = {}

    def step(message: str) -> float:
        on_step(message)
        return time.perf_counter()

    t = step(f"1/7 Copying the demo videos into {ws.root}")
    _place_video(demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO), ws.root / "data_src.mp4", settings.src_seconds,
                 video.cut)
    _place_video(demo_media.packaged_file(demo_media.DEMO_DST_VIDEO), ws.root / "data_dst.mp4", settings.dst_seconds,
                 video.cut)
    seconds["videos"] = time.perf_counter() - t

    t = step("2/7 Extracting the dst frames")
    if not state.done("frames"):
        count = video.extract_frames(ws.video("dst"), ws.frames("dst"), overwrite=True, progress=progress)
        state.mark("frames", count=count)
    seconds["frames"] = time.perf_counter() - t

    extract = asdict(EXTRACT_SETTINGS)
    t = step("3/7 Extracting the src and dst facesets")
    if not state.done("faces"):
        extract_video(ws.video("src"), ws.aligned("src"), progress=progress, **extract)
        # dst gets its debug pictures like `facelab extract dst`: deleting one marks a frame for the manual fix.
        extract_folder(ws.frames("dst"), ws.aligned("dst"), debug_dir=ws.aligned_debug, progress=progress, **extract)
        state.mark("faces", src=len(list_faces(ws.aligned("src"))), dst=len(list_faces(ws.aligned("dst"))))
    seconds["faces"] = time.perf_counter() - t

    t = step(f"4/7 Training a small {MODEL_NAME} for up to {settings.minutes:g} min (random warp off for the last "
             f"{1 - SHARPEN_FROM:.0%})")
    _train(ws, state, settings, progress)
    seconds["train"] = time.perf_counter() - t

    t = step("5/7 Merging the new face into the dst frames")
    swapper = Swapper.load(ws.model, MODEL_NAME, device=settings.device)
    paths = MergePaths(ws.frames("dst"), ws.aligned("dst"), ws.merged, ws.merged_mask)
    retrained = state.data.get("merge", {}).get("iteration") != swapper.iteration
    report = merge_folder(paths, swapper, resolve(MERGE_OPTIONS), overwrite=retrained, progress=progress)
    state.mark("merge", iteration=swapper.iteration, frames=report.frames)
    seconds["merge"] = time.perf_counter() - t

    result_video, compare_video = ws.root / RESULT_VIDEO, ws.root / COMPARE_VIDEO
    t = step(f"6/7 Assembling {result_video.name} and {compare_video.name} (dst | result) with the dst's sound")
    changed = retrained or bool(report.merged)
    if changed or not result_video.is_file():
        video.assemble(ws.merged, ws.video("dst"), result_video,
                       metadata=provenance.label_container(step="demo", model=MODEL_NAME), progress=progress)
    if changed or not compare_video.is_file():
        write_compare(ws.frames("dst"), ws.merged, ws.video("dst"), compare_video,
                      metadata=provenance.label_container(step="demo compare", model=MODEL_NAME), progress=progress)
    seconds["assemble"] = time.perf_counter() - t

    t = step(f"7/7 Checking {result_video.name} and {compare_video.name} for the synthetic-media label")
    verification = provenance.verify(result_video)
    compare_verification = provenance.verify(compare_video)
    seconds["verify"] = time.perf_counter() - t
    faces = state.data["faces"]
    return DemoResult(ws, result_video, swapper.iteration, faces["src"], faces["dst"], report.frames, verification,
                      seconds, compare_video, compare_verification)


def _place_video(packaged: Path, target: Path, seconds: float | None, cut: Callable[..., Path]) -> None:
    """Copy a demo video into the workspace (only its first ``seconds`` when given); kept when already there."""
    if target.is_file():
        return
    if seconds is None:
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(packaged, tmp)
        tmp.replace(target)
    else:
        cut(packaged, 0.0, seconds, out_path=target)
