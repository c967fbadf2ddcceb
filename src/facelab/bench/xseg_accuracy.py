"""XSeg's accuracy benchmark (`facelab bench xseg --accuracy`): real demo faces with real-looking occluders whose
ground truth is known, 20 of them labelled with polygons traced from it, the rest a test set.

The last quarter of each demo video (one block after a short gap: neighbouring frames are near-duplicates) is
the test set; every test face gets a hand, a microphone or a piece of another photo (``xseg_occluders``) pasted
on its hull, so its truth is the landmark hull minus the occluder. The generic start trains first (no labels:
hull targets and synthetic occluders on the training faces), then 20 labelled training faces refine it. After
each: mean IoU against the truth, and the share of the occluders' pixels inside the hull that the mask calls
face. Budgets are CPU time ÷ torch threads, so they mean the same on a busy machine.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from facelab.bench import xseg_occluders
from facelab.bench.holdout import split_frames
from facelab.geometry.masks import hull_mask
from facelab.io import demo_media
from facelab.io.faceimage import list_faces, read_face, write_face
from facelab.io.frames import frame_name
from facelab.progress import ProgressCallback, no_progress
from facelab.xseg import augment

FACE = {"face_type": "whole-face", "image_size": 256, "max_faces": 1, "device": "cpu"}  # XSeg's default crop
LABELLED_FACES = {"src": 12, "dst": 8}
TEST_FRACTION, GAP_SECONDS = 0.25, 0.25
SRC_TRAIN_STEP = 3  # neighbouring src frames are near-duplicates: every third is plenty to train on
GENERIC_SHARE = 0.5  # of the budget; the labelled refinement gets the rest
TRAIN_SETTINGS = {"learning_rate": 1e-3, "save_minutes": 600.0}  # else the default XSeg (256 px, the shipped net)
PREVIEW_FACES = 6
PREVIEW_NAME = "xseg_test_faces.png"


def extract_once(video_entry: tuple, folder: Path, numbers: list[int], progress: ProgressCallback) -> Path:
    """The faces of frames ``numbers`` of a demo video in ``folder``, extracted once (``.done`` records which)."""
    from facelab.extract.runner import extract_video

    done = folder / ".done"
    wanted = ",".join(map(str, numbers))
    if not (done.is_file() and done.read_text() == wanted):
        shutil.rmtree(folder, ignore_errors=True)
        extract_video(demo_media.packaged_file(video_entry), folder, only=[frame_name(n, "png") for n in numbers],
                      progress=progress, **FACE)
        done.write_text(wanted)
    return folder


def prepare_accuracy_faces(bench_dir: Path, quick: bool, progress: ProgressCallback) -> dict[str, Path]:
    """Training and test facesets of both demo videos: {"src/train": folder, "src/test": ..., "dst/...": ...}."""
    from facelab.io.video import probe

    out = {}
    for side, entry in (("src", demo_media.DEMO_SRC_VIDEO), ("dst", demo_media.DEMO_DST_VIDEO)):
        video = demo_media.packaged_file(entry)
        info = probe(video)
        frames = min(info.frames, 40) if quick else info.frames
        split = split_frames(frames, TEST_FRACTION, gap=round(GAP_SECONDS * float(info.fps)))
        step = SRC_TRAIN_STEP if side == "src" else 1
        root = Path(bench_dir) / "data" / ("quick" if quick else "all") / side
        out[f"{side}/train"] = extract_once(entry, root / "train", list(split.train)[::step], progress)
        out[f"{side}/test"] = extract_once(entry, root / "test", list(split.holdout), progress)
    return out


def occlude(image: np.ndarray, landmarks: np.ndarray, kind: str, rng: np.random.Generator, skin: np.ndarray,
            photo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(occluded image, ground truth (S, S) bool = hull minus occluder, occluder (S, S) bool) of one aligned face
    with a real-looking occluder of ``kind`` pasted centred on a random point of its hull."""
    s = image.shape[0]
    hull = hull_mask(landmarks, s, s)
    scale = rng.uniform(0.5, 0.8) if kind == "hand" else rng.uniform(0.3, 0.55)  # a hand fills less of its square
    occluder = xseg_occluders.real_looking_occluder(kind, int(s * scale), rng, skin, photo)
    ys, xs = np.nonzero(hull > 0.5)
    k = int(rng.integers(len(xs)))
    side = occluder.alpha.shape[0]
    occluded, kept = augment.paste(image, np.ones((s, s), np.float32), occluder, int(xs[k]) - side // 2,
                                   int(ys[k]) - side // 2)
    covered = kept < 0.5
    return occluded, (hull > 0.5) & ~covered, covered


def exclude_polygons(covered: np.ndarray) -> list[list[list[float]]]:
    """The outlines of ``covered`` (S, S) bool as mask-editor polygons ((x, y), origin at the top-left pixel's
    corner), traced to within a pixel, as a careful user would draw them."""
    contours, _ = cv2.findContours(covered.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        points = cv2.approxPolyDP(contour, 0.8, True).reshape(-1, 2).astype(np.float64) + 0.5
        if len(points) >= 3:
            polygons.append(points.tolist())
    return polygons


def _photos() -> list[np.ndarray]:
    return [cv2.imread(str(demo_media.packaged_file(entry)), cv2.IMREAD_COLOR)
            for entry in (demo_media.MULTI_FACE_JPG, demo_media.SINGLE_FACE_JPG)]


def make_test_set(faces: list[Path], skins_from: list[Path], seed: int) -> list[dict[str, Any]]:
    """Each of ``faces`` with a real-looking occluder (the kinds in turn), skin cut from the faces of
    ``skins_from``, photo pieces from the packaged stills (3 in 4) and other faces (1 in 4)."""
    rng = np.random.default_rng(seed)
    skins = [read_face(p) for p in skins_from]
    skins = [xseg_occluders.skin_patch(image, meta.landmarks) for image, meta in skins]
    photos = _photos()
    cases = []
    for n, path in enumerate(faces):
        image, meta = read_face(path)
        kind = xseg_occluders.KINDS[n % len(xseg_occluders.KINDS)]
        photo = photos[n % len(photos)] if n % 4 else read_face(skins_from[int(rng.integers(len(skins_from)))])[0]
        occluded, truth, covered = occlude(image, meta.landmarks, kind, rng, skins[int(rng.integers(len(skins)))],
                                           photo)
        cases.append({"path": path, "meta": meta, "image": occluded, "truth": truth, "covered": covered,
                      "kind": kind})
    return cases


def write_labelled(cases: list[dict[str, Any]], folder: Path) -> None:
    """The occluded faces as face files in ``folder``, each carrying exclude polygons traced from its truth."""
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        meta = case["meta"]
        meta.mask_polygons = {"exclude": exclude_polygons(case["covered"])}
        write_face(folder / case["path"].name, case["image"], meta)


def score(segmenter, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean IoU of the masks (> 0.5) against the truth, the pooled share of occluder pixels (inside the hull) the
    masks call face, both per occluder kind too; and the masks themselves."""
    masks = np.concatenate([segmenter.predict(np.stack([c["image"] for c in cases[i : i + 16]]))
                            for i in range(0, len(cases), 16)])
    ious, inside, total, kinds = [], 0, 0, {}
    for case, mask in zip(cases, masks):
        face = mask > 0.5
        truth = case["truth"]
        iou = float((face & truth).sum() / max((face | truth).sum(), 1))
        hull = hull_mask(case["meta"].landmarks, *truth.shape) > 0.5
        under = case["covered"] & hull
        ious.append(iou)
        inside, total = inside + int((face & under).sum()), total + int(under.sum())
        kind = kinds.setdefault(case["kind"], {"ious": [], "inside": 0, "total": 0})
        kind["ious"].append(iou)
        kind["inside"], kind["total"] = kind["inside"] + int((face & under).sum()), kind["total"] + int(under.sum())
    return {"faces": len(cases), "iou": float(np.mean(ious)), "occluder_share": inside / max(total, 1),
            "by_kind": {k: {"faces": len(v["ious"]), "iou": float(np.mean(v["ious"])),
                            "occluder_share": v["inside"] / max(v["total"], 1)} for k, v in kinds.items()},
            "masks": masks}


def _train(folder: Path, faces: list[Path], generic: bool, minutes: float, seed: int) -> dict[str, Any]:
    from facelab.xseg.trainer import train_xseg

    threads = torch.get_num_threads()
    started = time.perf_counter()
    result = train_xseg(folder, faces, dict(TRAIN_SETTINGS), generic=generic, minutes=minutes, seed=seed,
                        clock=lambda: time.process_time() / threads)
    return {"iterations": result.iteration - result.start_iteration, "wall_s": time.perf_counter() - started,
            "faces": result.faces, "cpu_minutes_per_thread": minutes, "torch_threads": threads}


def run_accuracy(bench_dir: Path, minutes: float = 10.0, quick: bool = False, seed: int = 0,
                 on_line: Callable[[str], None] = print, progress: ProgressCallback = no_progress) -> dict[str, Any]:
    """The whole accuracy benchmark in ``bench_dir`` (faces cached under data/, the run under accuracy/)."""
    from facelab.train.preview import write_png
    from facelab.xseg.segmenter import Segmenter
    from facelab.xseg.trainer import preview_grid

    folders = prepare_accuracy_faces(bench_dir, quick, progress)
    train = [folders["src/train"], folders["dst/train"]]
    pool = list_faces(folders["src/train"]) + list_faces(folders["dst/train"])
    test = make_test_set(list_faces(folders["src/test"]) + list_faces(folders["dst/test"]), pool, seed)
    run = Path(bench_dir) / "accuracy"
    shutil.rmtree(run, ignore_errors=True)
    picked = [p for side in ("src", "dst") for p in _spread(list_faces(folders[f"{side}/train"]),
                                                             LABELLED_FACES[side])]
    labelled = make_test_set(picked, pool, seed + 1)
    write_labelled(labelled, run / "labelled")
    on_line(f"XSeg accuracy: {len(test)} test faces, {len(labelled)} labelled, training faces "
            f"{sum(len(list_faces(f)) for f in train)}; budget {minutes:g} CPU-min per thread in all")
    report: dict[str, Any] = {"test_faces": len(test), "labelled_faces": len(labelled)}
    for phase, faces, generic, share in (("generic", train, True, GENERIC_SHARE),
                                         ("labelled", [run / "labelled"], False, 1 - GENERIC_SHARE)):
        report[f"{phase}_training"] = _train(run / "xseg", faces, generic, minutes * share, seed)
        scores = score(Segmenter.load(run / "xseg"), test)
        masks = scores.pop("masks")
        report[phase] = scores
        on_line(f"  {phase}: IoU {scores['iou']:.3f}, occluder pixels in the mask {100 * scores['occluder_share']:.1f} %"
                f" after {report[f'{phase}_training']['iterations']} iterations")
    shown = np.linspace(0, len(test) - 1, min(PREVIEW_FACES, len(test))).round().astype(int)
    write_png(Path(bench_dir) / PREVIEW_NAME,
              preview_grid(np.stack([test[i]["image"] for i in shown]), masks[shown]))
    return report


def _spread(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all when fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]
