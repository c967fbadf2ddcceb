"""The faces XSeg trains on and their targets.

A face is *labelled* when the mask editor stored include/exclude polygons in its metadata; its target is the
editor's own mask (``facelab.train.samples.face_mask``: the landmark hull plus the includes minus the excludes,
the very mask the editor previews). With no labelled face (or asked to), the *generic start* trains on every
face with its landmark hull as target and synthetic occluders pasted over it. Faces are read from disk when
sampled, so a faceset of any length costs no memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facelab.errors import InputError, MetadataError, WorkspaceError
from facelab.geometry.masks import hull_mask
from facelab.io.faceimage import list_faces, read_face, read_meta
from facelab.train.samples import face_mask
from facelab.types import FaceMeta
from facelab.xseg import augment

log = logging.getLogger(__name__)
OCCLUDER_CHANCE = {"labelled": 0.5, "generic": 0.8}  # per sample; the generic start learns occluders only so


def is_labelled(meta: FaceMeta) -> bool:
    return bool(meta.mask_polygons.get("include") or meta.mask_polygons.get("exclude"))


def polygon_target(meta: FaceMeta) -> np.ndarray:
    """(S, S) uint8 0/255 training target of a labelled face at its own size S: exactly the editor's mask."""
    polygons = meta.mask_polygons
    return face_mask(meta.landmarks, meta.image_size, polygons.get("include", []), polygons.get("exclude", []))


@dataclass(frozen=True)
class FaceSource:
    """One face file to train on; ``labelled`` says whether its polygons or its hull are the target."""

    path: Path
    labelled: bool
    has_exclude: bool


def find_faces(folders: list[Path], generic: bool | None) -> tuple[list[FaceSource], bool]:
    """The faces to train on in ``folders`` and whether this is the generic start: the labelled faces, or all
    faces when none is labelled (``generic`` None), or as asked. Faces with unreadable metadata are skipped."""
    found: list[tuple[Path, FaceMeta]] = []
    for folder in folders:
        for path in list_faces(folder):
            try:
                found.append((path, read_meta(path)))
            except (MetadataError, InputError) as err:
                log.warning("skipping %s", err)
    labelled = [(p, m) for p, m in found if is_labelled(m)]
    use_generic = (not labelled) if generic is None else generic
    chosen = found if use_generic else labelled
    if not chosen:
        where = ", ".join(str(f) for f in folders)
        raise WorkspaceError(f"no faces to train XSeg on in {where}" if use_generic or not found else
                             f"no face in {where} has mask polygons",
                             fix="extract faces first" if not found else
                             "draw polygons in the mask editor (`facelab ui`), or use --generic")
    return [FaceSource(p, not use_generic, bool(m.mask_polygons.get("exclude"))) for p, m in chosen], use_generic


def load_face(source: FaceSource, resolution: int) -> tuple[np.ndarray, np.ndarray, FaceMeta]:
    """(image (R, R, 3) uint8 BGR, target (R, R) float32 [0, 1], metadata) of one face at ``resolution``."""
    image, meta = read_face(source.path)
    size = meta.image_size
    if image.shape[:2] != (size, size):
        raise MetadataError(f"the image is {image.shape[1]}×{image.shape[0]} px but its metadata says {size}",
                            path=source.path, fix="re-extract this face")
    target = polygon_target(meta) if source.labelled else np.rint(hull_mask(meta.landmarks, size, size) * 255)
    return _resize(image, resolution), _resize(target.astype(np.float32) / 255, resolution), meta


def load_occluder(source: FaceSource, resolution: int) -> augment.Occluder | None:
    """What the face's exclude polygons cover, cut out at ``resolution`` (None when it has none)."""
    image, meta = read_face(source.path)
    return augment.cut_occluder(_resize(image, resolution), _resize(exclude_alpha(meta), resolution))


def exclude_alpha(meta: FaceMeta) -> np.ndarray:
    """(S, S) float32 [0, 1]: 1 inside the face's exclude polygons (what covers the face), drawn by the editor's
    own rasteriser (everything included, then the excludes cut out)."""
    s = meta.image_size
    everything = [[-1.0, -1.0], [s + 1.0, -1.0], [s + 1.0, s + 1.0], [-1.0, s + 1.0]]
    kept = face_mask(meta.landmarks, s, [everything], meta.mask_polygons.get("exclude", []))
    return 1 - kept.astype(np.float32) / 255


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def make_sample(faces: list[FaceSource], index: int, resolution: int, rng: np.random.Generator,
                generic: bool) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training pair (image (R, R, 3) uint8 BGR, mask (R, R) float32) from ``faces[index]``:
    occluders (another labelled face's excluded part, or a synthetic shape textured from another face), then
    affine + warp + flip on both, then HSV, blur and noise on the image."""
    image, mask, _ = load_face(faces[index], resolution)
    if rng.random() < OCCLUDER_CHANCE["generic" if generic else "labelled"]:
        occluder = _pick_occluder(faces, index, resolution, rng)
        image, mask = augment.paste_over_face(image, mask, occluder, rng)
    image, mask = augment.random_affine(image, mask, rng)
    image, mask = augment.random_warp(image, mask, rng)
    image, mask = augment.random_flip(image, mask, rng)
    image = augment.random_noise(augment.random_blur(augment.random_hsv(image, rng), rng), rng)
    return image, mask


def _pick_occluder(faces: list[FaceSource], index: int, resolution: int, rng: np.random.Generator) -> augment.Occluder:
    others = [f for i, f in enumerate(faces) if f.has_exclude and i != index]
    if others and rng.random() < 0.5:
        cut = load_occluder(others[int(rng.integers(len(others)))], resolution)
        if cut is not None:
            return cut
    other = faces[int(rng.integers(len(faces)))]
    crop_image, _, _ = load_face(other, resolution)
    side = int(rng.integers(resolution // 4, resolution // 2 + 1))
    x, y = (int(v) for v in rng.integers(0, resolution - side + 1, 2))
    return augment.synthetic_occluder(resolution, rng, [crop_image[y : y + side, x : x + side]])
