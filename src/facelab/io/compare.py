"""A side-by-side comparison video: each dst frame on the left, its merged frame on the right, with dst's sound.

The frames are composed into a temporary folder beside the output and encoded by ``video.assemble`` (the same
encoder, audio handling and container label as ``result.mp4``). The merged half keeps its invisible watermark:
the watermark's tiles are anchored at the frame's top-left corner, so the right half starts on a tile
boundary (a white gap pads the left half when its width is not a multiple of ``provenance.TILE``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from facelab import provenance
from facelab.errors import InputError
from facelab.io import video
from facelab.io.frames import encode_image, list_frames, parallel_map, read_frame, write_file
from facelab.progress import ProgressCallback, no_progress

CAPTIONS = ("dst (original)", "result (synthetic)")


def side_by_side(left: np.ndarray, right: np.ndarray, captions: tuple[str, str] = CAPTIONS) -> np.ndarray:
    """(H, W' + W, 3) uint8 BGR: ``left`` (H, W, 3), padded on its right to W' (the next multiple of
    ``provenance.TILE``), then ``right`` (H, W, 3); each caption written in its half's bottom-left corner."""
    if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
        raise ValueError(f"need two (H, W, 3) frames of one size, got {left.shape} and {right.shape}")
    height, width = left.shape[:2]
    pad = -width % provenance.TILE
    out = np.full((height, width + pad + width, 3), 255, np.uint8)
    out[:, :width], out[:, width + pad:] = left, right
    scale = max(0.4, height / 720)
    for x, text in ((0, captions[0]), (width + pad, captions[1])):
        origin = (x + 8, height - 10)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_compare(dst_frames: str | Path, merged_frames: str | Path, dst_video: str | Path, out_path: str | Path,
                  metadata: Mapping[str, str] | None = None, progress: ProgressCallback = no_progress) -> Path:
    """Encode ``out_path`` from every merged frame beside the dst frame of the same name, at ``dst_video``'s
    fps with its sound; ``metadata`` goes into the container's tags (pass ``provenance.label_container``)."""
    dst_frames, out_path = Path(dst_frames), Path(out_path)
    merged = list_frames(merged_frames)
    if not merged:
        raise InputError("holds no merged frames to compare", path=merged_frames, fix="run `facelab merge` first")
    originals = {p.stem: p for p in list_frames(dst_frames)}
    missing = [p.name for p in merged if p.stem not in originals]
    if missing:
        raise InputError(f"has no dst frame for merged frame {missing[0]} ({len(missing)} missing)", path=dst_frames,
                         fix="extract the dst frames again (`facelab video extract dst`)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_path.stem}-", dir=out_path.parent) as tmp:

        def compose(path: Path) -> None:
            frame = side_by_side(read_frame(originals[path.stem]), read_frame(path))
            write_file(Path(tmp) / f"{path.stem}.png", encode_image(frame, "png"))

        for _ in parallel_map(compose, merged):
            pass
        return video.assemble(tmp, dst_video, out_path, metadata=metadata, progress=progress)
