"""`facelab score` as a library call: score a merged workspace frame by frame, write score.json and score.html.

Each dst face of each merged frame is found again in the merged frame and in the dst frame (detector + 68
landmarks, as extraction does) and the two are compared: identity (dlib descriptors), pose, expression (landmarks)
and flicker (frame-to-frame change). A trained model in the model folder adds reconstruction SSIM.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError, WorkspaceError
from facelab.extract.extractor import Extractor
from facelab.faceset.identity import FaceDescriber, face_descriptors
from facelab.geometry.alignment import face_from_landmarks, warp_face
from facelab.geometry.boxes import box_from_points
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face
from facelab.io.files import write_bytes_atomic, write_json_atomic
from facelab.io.frames import list_images
from facelab.merge.runner import group_faces
from facelab.progress import Progress, ProgressCallback, no_progress
from facelab.score import expression, flicker, identity, pose, reconstruction, report
from facelab.types import FaceMeta
from facelab.workspace import SCORE_HTML, SCORE_JSON, Workspace

log = logging.getLogger(__name__)
JSON_NAME, REPORT_NAME = SCORE_JSON, SCORE_HTML
MIN_MATCH_IOU = 0.3  # a merged-frame face counts as "the" dst face when their landmark boxes overlap this much
THUMB_SIZE = 128


@dataclass
class FaceScore:
    """The numbers of one dst face in one merged frame; None where a measure could not be taken."""

    frame: str
    face_index: int
    found: bool  # the face was found again in the merged frame
    to_src: float | None = None
    to_dst: float | None = None
    pitch_error: float | None = None
    yaw_error: float | None = None
    roll_error: float | None = None
    pose_error: float | None = None
    expression_error: float | None = None
    merged_change: float | None = None
    dst_change: float | None = None
    flicker: float | None = None


@dataclass
class ScoreResult:
    faces: list[FaceScore]
    summary: dict[str, Any]
    json_path: Path
    report_path: Path
    worst: list[FaceScore] = field(default_factory=list)


def score_workspace(root: str | Path, *, detector: str = "retinaface", identity_faces: int = 64,
                    reconstruction_faces: int = 32, worst_frames: int = 6, model_dir: Path | None = None,
                    model_name: str | None = None, holdout_src: Path | None = None, holdout_dst: Path | None = None,
                    device: str = "auto", progress: ProgressCallback = no_progress) -> ScoreResult:
    """Score the merge in the workspace ``root``; writes ``score.json`` and ``score.html`` there (atomically)."""
    from facelab.device import resolve_devices

    ws = Workspace(Path(root))
    merged_frames = list_images(ws.merged)
    if not merged_frames:
        raise WorkspaceError("no merged frames to score", path=ws.merged, fix="run `facelab merge` first")
    dst_frames = {p.stem: p for p in list_images(ws.frames("dst"))}
    if not ws.aligned("dst").is_dir():
        raise WorkspaceError("no dst faces", path=ws.aligned("dst"), fix="run `facelab extract dst` first")
    by_frame, _ = group_faces(ws.aligned("dst"))
    dev = resolve_devices(device)[0]
    describer = FaceDescriber()
    src_person = identity.person_descriptor(
        faceset_descriptors(ws.aligned("src"), identity_faces, describer, "src person", progress))
    dst_person = identity.person_descriptor(
        faceset_descriptors(ws.aligned("dst"), identity_faces, describer, "dst person", progress))

    extractor = Extractor(detector, device=str(dev), face_type="full", image_size=256)
    faces: list[FaceScore] = []
    thumbs: dict[tuple[str, int], np.ndarray] = {}
    previous: tuple[np.ndarray, np.ndarray] | None = None  # (merged, dst) of the frame before
    for done, merged_path in enumerate(merged_frames, 1):
        merged = _read_frame(merged_path)
        dst_path = dst_frames.get(merged_path.stem)
        dst = _read_frame(dst_path) if dst_path is not None else None
        metas = by_frame.get(merged_path.stem, [])
        found = extractor.faces(merged, merged_path.name) if metas else []
        # The dst face is found again too, by the same detector and landmarks, so that both sides of every
        # comparison are measured alike (the stored faces may come from another detector or facelab version).
        dst_found = extractor.faces(dst, dst_path.name) if metas and dst is not None else []
        for meta in metas:
            reference = _match(meta, dst_found)
            row, merged_face = _score_face(merged_path.stem, meta.face_index, reference[1] if reference else meta,
                                           found)
            if merged_face is not None:
                d = face_descriptors([merged_face[0]], [merged_face[1]], describer)[0]
                row.to_src = float(identity.descriptor_distance(d, src_person))
                row.to_dst = float(identity.descriptor_distance(d, dst_person))
            if previous is not None and dst is not None and previous[0].shape == merged.shape == dst.shape:
                region = hull_mask(meta.source_landmarks, *merged.shape[:2])
                change = flicker.region_change(previous[0], merged, previous[1], dst, region)
                row.merged_change, row.dst_change, row.flicker = change.merged_change, change.dst_change, change.flicker
            faces.append(row)
            if worst_frames and dst is not None:
                thumbs[(row.frame, row.face_index)] = _thumbnail(merged, dst, meta)
        previous = (merged, dst) if dst is not None else None
        progress(Progress("score", done, len(merged_frames)))

    summary = summarise(faces, len(merged_frames))
    summary["reconstruction"] = _reconstruction(ws, model_dir or ws.model, model_name, holdout_src, holdout_dst,
                                                reconstruction_faces, device)
    worst = worst_faces(faces, worst_frames)
    json_path, report_path = ws.root / JSON_NAME, ws.root / REPORT_NAME
    write_json_atomic(json_path, json_safe({"summary": summary, "faces": [asdict(f) for f in faces]}))
    page = report.html_page(summary, faces, [(f, thumbs.get((f.frame, f.face_index))) for f in worst])
    write_bytes_atomic(report_path, page.encode())
    return ScoreResult(faces, summary, json_path, report_path, worst)


def summarise(faces: list[FaceScore], frames: int) -> dict[str, Any]:
    """Means (and the identity share) over every face where the measure was taken; nan where none was."""

    def mean(name: str) -> float:
        values = [getattr(f, name) for f in faces if getattr(f, name) is not None]
        return float(np.mean(values)) if values else float("nan")

    scored = [f for f in faces if f.to_src is not None]
    ids = identity.IdentityScores(np.array([f.to_src for f in scored]), np.array([f.to_dst for f in scored]))
    changes = [f for f in faces if f.flicker is not None]
    return {
        "frames": frames, "faces": len(faces), "faces_found": sum(f.found for f in faces),
        "identity": {"to_src": mean("to_src"), "to_dst": mean("to_dst"),
                     "share_nearer_to_src": ids.share_nearer_to_src},
        "pose": {"error_deg": mean("pose_error"), "pitch_deg": mean("pitch_error"), "yaw_deg": mean("yaw_error"),
                 "roll_deg": mean("roll_error")},
        "expression": {"landmark_error": mean("expression_error")},
        "flicker": {"flicker": mean("flicker"), "merged_change": mean("merged_change"),
                    "dst_change": mean("dst_change"),
                    "change_ratio": flicker.change_ratio(np.array([f.merged_change for f in changes]),
                                                         np.array([f.dst_change for f in changes]))},
    }


def worst_faces(faces: list[FaceScore], count: int) -> list[FaceScore]:
    """The ``count`` faces that score worst overall: faces not found again first, then by the mean of their
    rank (0 best .. 1 worst) in distance to src, pose error, expression error and flicker."""
    if count <= 0 or not faces:
        return []
    badness = np.zeros(len(faces))
    for name in ("to_src", "pose_error", "expression_error", "flicker"):
        values = np.array([np.nan if getattr(f, name) is None else getattr(f, name) for f in faces], np.float64)
        ok = ~np.isnan(values)
        if ok.sum() > 1:
            ranks = np.empty(ok.sum())
            ranks[np.argsort(values[ok], kind="stable")] = np.linspace(0, 1, ok.sum())
            badness[ok] += ranks
    badness += np.array([0 if f.found else 100 for f in faces])
    return [faces[i] for i in np.argsort(-badness, kind="stable")[:count]]


# -- pieces (read_faces, faceset_descriptors, json_safe also serve `facelab bench quality`) ----------------------


def _score_face(stem: str, face_index: int, meta: FaceMeta, found: list[tuple[np.ndarray, FaceMeta]]
                ) -> tuple[FaceScore, tuple[np.ndarray, FaceMeta] | None]:
    """Pose and expression of the dst face ``meta`` against its match among the merged frame's faces."""
    row = FaceScore(stem, face_index, found=False)
    match = _match(meta, found)
    if match is None:
        return row, None
    merged_meta = match[1]
    row.found = True
    axes, total = pose.pose_error([merged_meta.pitch, merged_meta.yaw, merged_meta.roll],
                                  [meta.pitch, meta.yaw, meta.roll])
    row.pitch_error, row.yaw_error, row.roll_error = (float(v) for v in axes[0])
    row.pose_error = float(total[0])
    row.expression_error = float(expression.landmark_error(merged_meta.source_landmarks, meta.source_landmarks))
    return row, match


def _match(meta: FaceMeta, found: list[tuple[np.ndarray, FaceMeta]]) -> tuple[np.ndarray, FaceMeta] | None:
    """The merged-frame face whose landmark box overlaps the dst face's most (IoU >= MIN_MATCH_IOU), or None."""
    target = box_from_points(meta.source_landmarks)
    best, best_iou = None, MIN_MATCH_IOU
    for face in found:
        iou = _iou(target, box_from_points(face[1].source_landmarks))
        if iou >= best_iou:
            best, best_iou = face, iou
    return best


def _iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _read_frame(path: Path) -> np.ndarray:
    frame = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError("cannot decode this frame", path=path, fix="merge or extract this frame again")
    return frame


def _thumbnail(merged: np.ndarray, dst: np.ndarray, meta: FaceMeta) -> np.ndarray:
    """(T, 2T, 3) uint8: the merged face beside the dst face, both cut as a whole face around the dst landmarks."""
    matrix = face_from_landmarks(meta.source_landmarks, "whole-face", THUMB_SIZE)
    return np.hstack([warp_face(merged, matrix, THUMB_SIZE), warp_face(dst, matrix, THUMB_SIZE)])


def spread(paths: list[Path], count: int) -> list[Path]:
    """At most ``count`` paths spread evenly over ``paths`` (all of them when there are fewer)."""
    if len(paths) <= count:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def read_faces(folder: Path, count: int) -> tuple[list[np.ndarray], list[FaceMeta]]:
    """At most ``count`` readable faces of ``folder`` (spread over it) and their metadata; unreadable ones are
    logged and skipped."""
    images, metas = [], []
    for path in spread(list_faces(folder), count):
        try:
            image, meta = read_face(path)
        except (InputError, MetadataError) as err:
            log.warning("skipping %s", err)
            continue
        images.append(image)
        metas.append(meta)
    return images, metas


def faceset_descriptors(folder: Path, count: int, describer: FaceDescriber, label: str,
                        progress: ProgressCallback = no_progress) -> np.ndarray:
    """(N, 128) descriptors of at most ``count`` faces of ``folder``; WorkspaceError when it has none."""
    images, metas = read_faces(folder, count) if folder.is_dir() else ([], [])
    if not images:
        raise WorkspaceError("no readable aligned faces", path=folder,
                             fix="extract the faceset first (`facelab extract src|dst`)")
    out = []
    for i, (image, meta) in enumerate(zip(images, metas), 1):
        out.append(face_descriptors([image], [meta], describer)[0])
        progress(Progress(label, i, len(images)))
    return np.stack(out)


def _reconstruction(ws: Workspace, model_dir: Path, model_name: str | None, holdout_src: Path | None,
                    holdout_dst: Path | None, count: int, device: str) -> dict[str, Any]:
    """SSIM of src→src and dst→dst; {"skipped": why} when there is no trained model."""
    from facelab.train import checkpoint
    from facelab.train.swap import Swapper

    if not checkpoint.find_models(model_dir):
        return {"skipped": f"no trained model in {model_dir}"}
    swapper = Swapper.load(model_dir, model_name, device=device)
    out: dict[str, Any] = {"model": swapper.name, "iteration": swapper.iteration}
    for side, holdout in (("src", holdout_src), ("dst", holdout_dst)):
        folder = Path(holdout) if holdout is not None else ws.aligned(side)
        images, metas = read_faces(folder, count)
        if not images:
            raise InputError("no readable aligned faces for the reconstruction SSIM", path=folder,
                             fix="give a folder of faces written by `facelab extract`")
        faces = reconstruction.model_faces(images, metas, swapper.face_type, swapper.resolution)
        redrawn = reconstruction.reconstruct(swapper.model, faces, side, swapper.device)
        out[side] = {"ssim": float(reconstruction.ssim_images(faces, redrawn).mean()), "faces": len(faces),
                     "held_out": holdout is not None, "folder": str(folder)}
    return out


def json_safe(value: Any) -> Any:
    """``value`` with nan/inf floats as None (JSON has no nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
