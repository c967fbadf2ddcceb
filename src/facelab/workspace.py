"""The workspace layout, as DeepFaceLab users know it.

```
WORKSPACE/
  data_src.mp4            the src video (any video extension)
  data_dst.mp4            the dst video
  data_src/               src frames 00001.png ...
  data_src/aligned/       src faceset
  data_dst/               dst frames
  data_dst/aligned/       dst faces
  data_dst/aligned_debug/ dst frames with detections drawn
  data_dst/merged/        merged frames
  data_dst/merged_mask/   masks of merged frames
  model/                  trained models
  result.mp4              the assembled video
```
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facelab.errors import WorkspaceError

Side = Literal["src", "dst"]
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    def frames(self, side: Side) -> Path:
        return self.root / f"data_{side}"

    def aligned(self, side: Side) -> Path:
        return self.frames(side) / "aligned"

    @property
    def aligned_debug(self) -> Path:
        return self.frames("dst") / "aligned_debug"

    @property
    def merged(self) -> Path:
        return self.frames("dst") / "merged"

    @property
    def merged_mask(self) -> Path:
        return self.frames("dst") / "merged_mask"

    @property
    def model(self) -> Path:
        return self.root / "model"

    def folders(self) -> list[Path]:
        return [self.frames("src"), self.aligned("src"), self.frames("dst"), self.aligned("dst"),
                self.aligned_debug, self.merged, self.merged_mask, self.model]

    def video(self, side: Side) -> Path:
        """The ``data_src.*`` / ``data_dst.*`` video; WorkspaceError when there is none."""
        found = self.find_video(side)
        if found is None:
            raise WorkspaceError(f"no data_{side} video in the workspace", path=self.root,
                                 fix=f"put your video there as data_{side}.mp4 (any video extension)")
        return found

    def find_video(self, side: Side) -> Path | None:
        hits = sorted(p for p in self.root.glob(f"data_{side}.*") if p.suffix.lower() in VIDEO_SUFFIXES)
        return hits[0] if hits else None

    def results(self) -> list[Path]:
        return sorted(self.root.glob("result.*"))


def create(root: str | Path) -> Workspace:
    """Create every workspace folder (existing content is kept)."""
    ws = Workspace(Path(root))
    for folder in ws.folders():
        folder.mkdir(parents=True, exist_ok=True)
    return ws


def clear(ws: Workspace, keep_videos: bool = True) -> list[Path]:
    """Delete the workspace's frames, faces, models and results; returns what was removed.

    The two source videos stay unless ``keep_videos`` is False. The caller asks the user first.
    """
    removed = []
    keep = {ws.find_video("src"), ws.find_video("dst")} if keep_videos else set()
    if not ws.root.is_dir():
        return removed
    for entry in sorted(ws.root.iterdir()):
        if entry in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    create(ws.root)
    return removed
