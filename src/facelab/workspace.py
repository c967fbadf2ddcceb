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
  .facelab-trash/<time>/  what `facelab workspace clear` took away, as it was
```

Clearing moves only what facelab makes (the three folders, ``result.*`` videos, the score report, the demo's
record) into the trash folder: a user's own files beside them stay, and nothing is deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facelab.errors import OutputError, WorkspaceError

Side = Literal["src", "dst"]
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
TRASH_NAME = ".facelab-trash"
# Files other steps write at the workspace root: `facelab score`'s report and the demo pipeline's step record.
SCORE_JSON, SCORE_HTML, DEMO_STATE = "score.json", "score.html", "demo_state.json"
ROOT_FILES = (SCORE_JSON, SCORE_HTML, DEMO_STATE)


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
        """The ``data_src.*`` / ``data_dst.*`` video; WorkspaceError when there is none, or several (picking one
        silently could extract or merge the wrong clip)."""
        videos = self.videos(side)
        if len(videos) > 1:
            raise WorkspaceError(f"{len(videos)} data_{side} videos: {', '.join(p.name for p in videos)}",
                                 path=self.root, fix=f"keep one data_{side}.* video there (move the others away)")
        if not videos:
            raise WorkspaceError(f"no data_{side} video in the workspace", path=self.root,
                                 fix=f"put your video there as data_{side}.mp4 (any video extension)")
        return videos[0]

    def find_video(self, side: Side) -> Path | None:
        hits = self.videos(side)
        return hits[0] if hits else None

    def videos(self, side: Side) -> list[Path]:
        """Every ``data_<side>.<video extension>`` file, sorted."""
        return _videos(self.root, f"data_{side}")

    def results(self) -> list[Path]:
        """The assembled ``result.<video extension>`` videos."""
        return _videos(self.root, "result")

    @property
    def trash(self) -> Path:
        return self.root / TRASH_NAME

    def has_layout(self) -> bool:
        """Whether ``root`` looks like a workspace: it holds the data_src/ and data_dst/ folders."""
        return self.frames("src").is_dir() and self.frames("dst").is_dir()


def _videos(root: Path, stem: str) -> list[Path]:
    return sorted(p for p in root.glob(f"{stem}.*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def create(root: str | Path) -> Workspace:
    """Create every workspace folder (existing content is kept). OutputError when one cannot be made."""
    ws = Workspace(Path(root))
    for folder in ws.folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a file in the way (also above root), a read-only disk, no permission
            raise OutputError(f"cannot create the workspace folder {folder.name}/ ({err.strerror})", path=folder,
                              fix="choose a workspace path you can write to, with no file standing where a "
                                  "folder of it should be") from None
    return ws


def clearable(ws: Workspace, videos: bool = False, without_layout: bool = False) -> list[Path]:
    """What ``clear`` would move to the trash: the entries facelab makes at the root that exist now.

    The ``data_src.*``/``data_dst.*`` videos only with ``videos``. WorkspaceError for a folder without the
    workspace layout (it may be any folder of the user's) unless ``without_layout`` says it is a workspace.
    """
    if not ws.has_layout() and not without_layout:
        raise WorkspaceError("no data_src/ and data_dst/ here: this is not a facelab workspace, nothing was moved",
                             path=ws.root, fix="check the --workspace path, or pass --is-workspace if it is one")
    made = [ws.frames("src"), ws.frames("dst"), ws.model, *ws.results(), *(ws.root / n for n in ROOT_FILES)]
    if videos:
        made += ws.videos("src") + ws.videos("dst")
    return [p for p in made if p.exists() or p.is_symlink()]


def clear(ws: Workspace, videos: bool = False, without_layout: bool = False) -> list[Path]:
    """Move ``clearable(ws, videos, without_layout)`` into a new ``<root>/.facelab-trash/<time>/`` and make the
    empty layout again; returns the moved entries' paths in the trash. A missing workspace is created.

    Each entry moves with one rename, so an interruption leaves it either in place or in the trash.
    """
    if not ws.root.exists():
        create(ws.root)
        return []
    entries = clearable(ws, videos, without_layout)
    moved = []
    if entries:
        into = _new_trash_folder(ws.trash)
        for entry in entries:
            target = into / entry.name
            try:
                entry.rename(target)
            except OSError as err:
                raise OutputError(f"cannot move {entry.name} to the trash ({err.strerror})", path=entry,
                                  fix=f"move it yourself; what was moved so far is in {into}") from None
            moved.append(target)
    create(ws.root)
    return moved


def _new_trash_folder(trash: Path) -> Path:
    """A new, empty ``trash/<YYYYmmdd-HHMMSS>[-n]`` folder."""
    if trash.is_symlink():  # it would carry the workspace's files to wherever the link points
        raise OutputError("the trash folder is a link", path=trash, fix="remove the link and run again")
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
    while True:
        folder = trash / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
        except OSError as err:
            raise OutputError(f"cannot create the trash folder ({err.strerror})", path=folder,
                              fix="check the workspace folder's permissions and free space") from None
