"""One measuring function per step, each at its fixed standard settings, on the real demo media.

- extract: RetinaFace + two-pass 68 landmarks + alignment, full face at 256 px, on 640×360 frames of the src demo
  video (decoding not timed).
- train: SAE and SAEHD training steps (forward + loss + backward + the model's optimizer) on real demo faces, in
  standard settings; FLOP per step counted by torch's FlopCounterMode.
- merge: the whole merge of dst demo frames (predict, mask, colour transfer, seamless blend, label, PNG write) with
  the df64 SAE (freshly initialised: speed does not depend on what the weights learned).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facelab.bench.measure import PeakMemory, precision_name, synchronize, top_ops
from facelab.io import demo_media
from facelab.options import validate
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.train import bench as train_bench
from facelab.train.heap import reuse_freed_memory
from facelab.train.precision import amp_dtype


@dataclass(frozen=True)
class TrainSetting:
    """``model``: the registered model measured with ``options`` (its other options at their defaults).
    ``deepfacelab_ms``: DeepFaceLab 2 SAEHD's ms/iteration at the same widths per precision (TF 2.15, CPU,
    masked training, steady state), measured side by side with facelab on one 2-core AVX-512-BF16/AMX machine
    (facelab issue 18), for the table's comparison column."""

    options: dict[str, Any]
    batch: int
    description: str
    deepfacelab_ms: dict[str, float] = field(default_factory=dict)
    model: str = "SAE"


# The standard training settings of facelab issue 8, at DeepFaceLab SAEHD's widths so the numbers compare with
# its published ms/iteration: our e_ch_dims / d_ch_dims count per colour channel (x3), so SAEHD's e_dims 32 is
# our minimum 21 (63 channels), d_dims 32 is 11 (33), 64 is 21 (63); mask_dims is SAEHD's d_mask_dims.
TRAIN_SETTINGS: dict[str, TrainSetting] = {
    "df64": TrainSetting({"archi": "df", "resolution": 64, "face_type": "full", "ae_dims": 128, "e_ch_dims": 21,
                          "d_ch_dims": 11, "mask_dims": 16, "learn_mask": True}, 8,
                         "SAE df, 64 px, full face, ae 128, e/d widths of SAEHD 32/32, mask 16, batch 8",
                         {"fp32": 1008.0, "bf16": 823.0}),
    "liae128": TrainSetting({"archi": "liae", "resolution": 128, "face_type": "full", "ae_dims": 256,
                             "e_ch_dims": 21, "d_ch_dims": 21, "mask_dims": 22, "learn_mask": True}, 4,
                            "SAE liae, 128 px, full face, ae 256, e/d widths of SAEHD 64/64, mask 22, batch 4",
                            {"fp32": 7879.0, "bf16": 6725.0}),
    # SAEHD at the same two settings (its widths count channels, as DeepFaceLab's do), then at its defaults.
    "saehd df64": TrainSetting({"archi": "df", "resolution": 64, "face_type": "full", "ae_dims": 128, "e_dims": 32,
                                "d_dims": 32, "mask_dims": 16}, 8,
                               "SAEHD df, 64 px, full face, ae 128, e/d 32/32, mask 16, batch 8, AdaBelief",
                               {"fp32": 1008.0, "bf16": 823.0}, model="SAEHD"),
    "saehd liae128": TrainSetting({"archi": "liae", "resolution": 128, "face_type": "full", "ae_dims": 256,
                                   "e_dims": 64, "d_dims": 64, "mask_dims": 22}, 4,
                                  "SAEHD liae, 128 px, full face, ae 256, e/d 64/64, mask 22, batch 4, AdaBelief",
                                  {"fp32": 7879.0, "bf16": 6725.0}, model="SAEHD"),
    "saehd df-ud128": TrainSetting({"archi": "df-ud"}, 4, "SAEHD df-ud at its defaults (128 px, full face, ae 256, "
                                   "e/d 64/64, mask 22), batch 4", model="SAEHD"),
    "saehd liae-ud128": TrainSetting({"archi": "liae-ud"}, 4, "SAEHD liae-ud at its defaults (128 px, full face, "
                                     "ae 256, e/d 64/64, mask 22), batch 4", model="SAEHD"),
}
PROFILED_STEPS = 2
EXTRACT_SETTING = {"detector": "retinaface", "face_type": "full", "image_size": 256}
MERGE_MODEL = "df64"


@dataclass
class BenchRow:
    """One measured line of the table. ``rate`` is in ``unit``; times are per iteration (a frame or a step)."""

    bench: str
    setting: str
    description: str
    device: str
    iterations: int
    rate: float
    unit: str
    median_ms: float
    q1_ms: float
    q3_ms: float
    peak_mib: float
    memory: str  # "RSS" (process resident memory) or "CUDA" (torch-allocated GPU memory)
    precision: str = "fp32"
    gflops: float | None = None  # achieved, training only
    extra: dict[str, Any] = field(default_factory=dict)


def _frames(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` decodable frames of ``video`` as (H, W, 3) uint8 BGR."""
    from facelab.extract.frames import video_frames

    out = []
    for frame in video_frames(video):
        if len(out) >= count:
            break
        if frame.image is not None:
            out.append(frame.image)
    return out


def bench_extract(device: torch.device, frames: int, warmup: int = 2,
                  progress: ProgressCallback = no_progress) -> BenchRow:
    """Frames/s of face extraction (detect, landmarks, align and cut every face) on the src demo video."""
    from facelab.extract.extractor import Extractor

    images = _frames(demo_media.packaged_file(demo_media.DEMO_SRC_VIDEO), frames + warmup)
    extractor = Extractor(EXTRACT_SETTING["detector"], device=str(device), face_type=EXTRACT_SETTING["face_type"],
                          image_size=EXTRACT_SETTING["image_size"])
    seconds, faces = [], 0
    with PeakMemory(device) as memory:
        for i, image in enumerate(images):
            start = time.perf_counter()
            found = extractor.faces(image)
            synchronize(device)
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
                faces += len(found)
            progress(Progress("bench extract", i + 1, len(images)))
    timing = train_bench.Timing.of(seconds)
    height, width = images[0].shape[:2]
    return BenchRow("extract", f"{EXTRACT_SETTING['detector']} {width}x{height}",
                    f"{EXTRACT_SETTING['detector']}, two-pass 68 landmarks, {EXTRACT_SETTING['face_type']} face "
                    f"{EXTRACT_SETTING['image_size']} px, {width}x{height} frames", str(device), timing.iterations,
                    len(seconds) / sum(seconds), "frames/s", timing.median_ms, timing.q1_ms, timing.q3_ms,
                    memory.peak_mib, memory.kind, extra={"faces": faces})


def _model(setting: str, device: torch.device) -> torch.nn.Module:
    """The model of a standard training ``setting``, freshly initialised from seed 0."""
    from facelab.train.models import MODELS

    spec = TRAIN_SETTINGS[setting]
    cls = MODELS.get(spec.model)
    torch.manual_seed(0)
    return cls(validate(cls.option_specs, spec.options)).to(device)


def bench_train(setting: str, device: torch.device, iterations: int, warmup: int = 2, amp: str = "auto",
                progress: ProgressCallback = no_progress) -> BenchRow:
    """Samples/s, ms per training step and achieved GFLOP/s of a standard ``setting`` on real faces, at the
    precision ``amp`` gives on ``device``; ``extra["top_ops"]``: the five ops with the most self time over two
    more steps (PyTorch profiler), so the table shows where the time goes; ``extra["cpu_ms"]``: the median
    process CPU time per step (on the CPU), which a shared machine's other work does not inflate."""
    spec = TRAIN_SETTINGS[setting]
    with PeakMemory(device) as memory, reuse_freed_memory(device.type == "cpu"):  # as training does
        model = _model(setting, device)
        r, n = model.resolution, spec.batch
        src, dst = (train_bench.to_batch_tensors(*train_bench.demo_faces(demo_media.packaged_file(video), 2 * n, r,
                                                                         model.face_type), device)
                    for video in (demo_media.DEMO_SRC_VIDEO, demo_media.DEMO_DST_VIDEO))
        g = torch.Generator().manual_seed(0)
        batches = [train_bench.training_batch(src, dst, torch.randperm(2 * n, generator=g)[:n])
                   for _ in range(warmup + iterations)]
        flops = model.flops_per_iteration(n, swap=False)
        progress(Progress(f"bench train {setting}", 0, None))
        runner = train_bench.StepRunner(model, amp=amp, swap=False)
        log = runner.run(batches)
    timing = train_bench.Timing.of(log.seconds[warmup:])
    precision = precision_name(amp_dtype(device, amp))
    with reuse_freed_memory(device.type == "cpu"):  # steady state: the optimizer's moments exist
        ops = top_ops(lambda: runner(batches[-1]), PROFILED_STEPS, device)
    return BenchRow("train", setting, spec.description, str(device), timing.iterations,
                    1000 * n / timing.median_ms, "samples/s", timing.median_ms, timing.q1_ms, timing.q3_ms,
                    memory.peak_mib, memory.kind, precision, gflops=flops / 1e9 / (timing.median_ms / 1000),
                    extra={"gflop_per_step": flops / 1e9, "batch": n, "first_loss": log.losses[0],
                           "last_loss": log.losses[-1], "top_ops": ops,
                           "cpu_ms": 1000 * statistics.median(log.cpu_seconds[warmup:]),
                           "deepfacelab_ms": spec.deepfacelab_ms.get(precision),
                           "params_m": sum(p.numel() for p in model.parameters()) / 1e6})


def bench_merge(device: torch.device, frames: int, progress: ProgressCallback = no_progress) -> BenchRow:
    """Frames/s of merging dst demo frames with the df64 SAE and the default merge settings (seamless, rct).

    The frames and their aligned dst faces are prepared first (not timed) in a temporary folder. ``median_ms``
    is the per-frame time of mask + colour + blend + label + write on one worker thread; ``rate`` is end to end.
    """
    from facelab.extract.runner import extract_folder
    from facelab.io.frames import encode_image
    from facelab.merge.options import resolve
    from facelab.merge.runner import MergePaths, merge_folder
    from facelab.train.swap import Swapper

    images = _frames(demo_media.packaged_file(demo_media.DEMO_DST_VIDEO), frames)
    with tempfile.TemporaryDirectory(prefix="facelab-bench-") as tmp:
        root = Path(tmp)
        paths = MergePaths(root / "frames", root / "aligned", root / "merged", root / "merged_mask")
        paths.frames.mkdir()
        for i, image in enumerate(images, 1):
            (paths.frames / f"{i:05d}.png").write_bytes(encode_image(image, "png"))
        extract_folder(paths.frames, paths.aligned, detector=EXTRACT_SETTING["detector"], face_type="full",
                       image_size=256, image_format="jpg", max_faces=1, device=str(device))
        seconds: list[float] = []
        with PeakMemory(device) as memory:
            swapper = Swapper(_model(MERGE_MODEL, device).eval(), device, "SAE", 0)
            report = merge_folder(paths, swapper, resolve({}), overwrite=True,
                                  on_frame=lambda result: seconds.append(result.seconds), progress=progress)
    timing = train_bench.Timing.of(seconds)
    height, width = images[0].shape[:2]
    settings = resolve({}).base
    return BenchRow("merge", f"SAE {MERGE_MODEL} {width}x{height}",
                    f"SAE {MERGE_MODEL} ({TRAIN_SETTINGS[MERGE_MODEL].options['resolution']} px), mode "
                    f"{settings['mode']}, mask {settings['mask']}, colour {settings['colour_transfer']}, PNG out, "
                    f"{width}x{height} frames", str(device), report.merged, report.merged / report.seconds,
                    "frames/s", timing.median_ms, timing.q1_ms, timing.q3_ms, memory.peak_mib, memory.kind,
                    extra={"faces": report.faces})
