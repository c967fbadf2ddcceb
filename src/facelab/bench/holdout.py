"""The quality benchmark's data: each demo video's faces, split into a training part and a held-out part.

Faces of adjacent frames are near-duplicates, so the held-out faces are one contiguous block at the end of each
video (not every n-th frame), with a short gap of frames used by neither side before it. The facesets are
extracted once into ``DATA_FOLDER`` of the benchmark's folder and reused by later runs (resumable: each part is
recorded in ``split.json`` once it is complete).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facelab.io import demo_media
from facelab.io.files import write_json_atomic
from facelab.io.safe_json import loads_bounded
from facelab.io.frames import frame_name
from facelab.progress import ProgressCallback, no_progress

DATA_FOLDER = "data"
SPLIT_FILE = "split.json"
HOLDOUT_FRACTION = 0.2
GAP_SECONDS = 0.25  # frames this close to the held-out block are near-duplicates of it: used by neither side
SIDES = {"src": demo_media.DEMO_SRC_VIDEO, "dst": demo_media.DEMO_DST_VIDEO}


@dataclass(frozen=True)
class Split:
    """1-based frame numbers, ``train`` = [train_first, train_last], ``holdout`` = [holdout_first, holdout_last]."""

    frames: int
    train_first: int
    train_last: int
    holdout_first: int
    holdout_last: int

    @property
    def train(self) -> range:
        return range(self.train_first, self.train_last + 1)

    @property
    def holdout(self) -> range:
        return range(self.holdout_first, self.holdout_last + 1)


def split_frames(frames: int, holdout_fraction: float = HOLDOUT_FRACTION, gap: int = 0) -> Split:
    """Frames 1..``frames``: the last ``holdout_fraction`` (at least one frame) held out, ``gap`` frames before
    them dropped, the rest for training. Raises ValueError when fewer than one training frame would be left."""
    if not 0 < holdout_fraction < 1 or gap < 0:
        raise ValueError(f"holdout fraction {holdout_fraction} must be in (0, 1) and gap {gap} >= 0")
    holdout = max(1, math.ceil(frames * holdout_fraction))
    train_last = frames - holdout - gap
    if train_last < 1:
        raise ValueError(f"{frames} frames are too few to hold out {holdout} with a gap of {gap}")
    return Split(frames, 1, train_last, frames - holdout + 1, frames)


@dataclass(frozen=True)
class BenchData:
    """Where the four facesets are: ``folder(side, part)`` with side "src"/"dst" and part "train"/"holdout"."""

    root: Path
    splits: dict[str, Split]
    faces: dict[str, dict[str, int]]  # side → part → faces extracted

    def folder(self, side: str, part: str) -> Path:
        return self.root / side / part

    def describe(self) -> dict[str, Any]:
        return {side: {**asdict(split), "faces": self.faces[side]} for side, split in self.splits.items()}


def prepare(bench_dir: Path, *, max_frames: int | None = None, progress: ProgressCallback = no_progress
            ) -> BenchData:
    """Extract (or reuse) the training and held-out facesets of both demo videos under ``bench_dir/data``.

    ``max_frames`` uses only the first frames of each video (a smoke run); a cached split made with another
    value is extracted again into a fresh folder.
    """
    from facelab.extract.runner import extract_video
    from facelab.io.faceimage import list_faces
    from facelab.io.video import probe
    from facelab.pipeline import EXTRACT_SETTINGS

    root = Path(bench_dir) / DATA_FOLDER / ("all" if max_frames is None else f"first{max_frames}")
    record_path = root / SPLIT_FILE
    record = _read_record(record_path)
    splits, faces = {}, {}
    for side, entry in SIDES.items():
        video = demo_media.packaged_file(entry)
        info = probe(video)
        frames = info.frames if max_frames is None else min(max_frames, info.frames)
        split = split_frames(frames, gap=round(GAP_SECONDS * float(info.fps)))
        splits[side], faces[side] = split, {}
        for part, numbers in (("train", split.train), ("holdout", split.holdout)):
            key = f"{side}/{part}"
            folder = root / side / part
            if record.get(key) != [numbers.start, numbers.stop - 1]:
                extract_video(video, folder, only=[frame_name(n, "png") for n in numbers], progress=progress,
                              **asdict(EXTRACT_SETTINGS))
                record[key] = [numbers.start, numbers.stop - 1]
                write_json_atomic(record_path, record)
            faces[side][part] = len(list_faces(folder))
    return BenchData(root, splits, faces)


def _read_record(path: Path) -> dict[str, Any]:
    """The parts already extracted ({"src/train": [first, last], ...}); {} when missing or not ours."""
    try:
        data = loads_bounded(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, list) and len(v) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in v)}
