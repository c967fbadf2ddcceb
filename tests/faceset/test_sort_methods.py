"""Every sort method orders a real faceset (demo videos: a woman = src, a man = dst) as its definition says."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from facelab.errors import InputError, OptionError
from facelab.extract import extract_faces
from facelab.faceset.rename import trash_dir
from facelab.faceset.sort import SORT_METHODS, sort_faceset
from facelab.geometry.landmarks68 import mirror_landmarks
from facelab.geometry.pose import pose_from_landmarks
from facelab.io.faceimage import list_faces, read_face, read_meta, write_face


def _key(meta) -> tuple[str, int]:
    return meta.source_filename, meta.face_index


def _keys(paths) -> list[tuple[str, int]]:
    return [_key(read_meta(p)) for p in paths]


def _alter(path, change) -> tuple[str, int]:
    """Rewrite a face with ``change(image)`` applied (metadata kept); returns its identity key."""
    image, meta = read_face(path)
    write_face(path, change(image), meta)
    return _key(meta)


def _sorted_ok(folder, before: set) -> list:
    """The faces after a sort, in order; checks nothing was lost or duplicated (kept + trash = before)."""
    kept = list_faces(folder)
    assert [p.name for p in kept] == [f"{i:05d}.jpg" for i in range(len(kept))]
    trashed = list_faces(trash_dir(folder)) if trash_dir(folder).exists() else []
    assert sorted(_keys(kept) + _keys(trashed)) == sorted(before)
    return kept


def _all_keys(folder) -> set:
    return set(_keys(list_faces(folder)))


def test_blur_puts_a_face_blurred_on_purpose_last(faceset_dir):
    before = _all_keys(faceset_dir)
    victim = _alter(sorted(faceset_dir.iterdir())[7], lambda im: cv2.GaussianBlur(im, (0, 0), 2.0))
    sort_faceset(faceset_dir, "blur")
    kept = _sorted_ok(faceset_dir, before)
    assert _key(read_meta(kept[-1])) == victim


def test_motion_blur_puts_a_smeared_face_last(src_faceset_dir):
    before = _all_keys(src_faceset_dir)
    kernel = np.eye(9, dtype=np.float32) / 9  # diagonal smear
    victim = _alter(sorted(src_faceset_dir.iterdir())[3], lambda im: cv2.filter2D(im, -1, kernel))
    sort_faceset(src_faceset_dir, "motion-blur")
    kept = _sorted_ok(src_faceset_dir, before)
    assert _key(read_meta(kept[-1])) == victim


@pytest.mark.parametrize("method,field", [("face-yaw", "yaw"), ("face-pitch", "pitch")])
def test_pose_sorts_ascend(faceset_dir, method, field):
    before = _all_keys(faceset_dir)
    sort_faceset(faceset_dir, method)
    values = [getattr(read_meta(p), field) for p in _sorted_ok(faceset_dir, before)]
    assert values == sorted(values)
    assert values[-1] - values[0] > 10  # the demo videos do move their heads


def test_a_mirrored_face_swaps_yaw_sign_and_sort_side(src_faceset_dir):
    metas = {p: read_meta(p) for p in list_faces(src_faceset_dir)}
    path = max(metas, key=lambda p: abs(metas[p].yaw))  # the most turned face
    image, meta = read_face(path)
    mirrored = mirror_landmarks(meta.landmarks, meta.image_size)
    pitch, yaw, _ = pose_from_landmarks(mirrored)
    assert np.sign(yaw) == -np.sign(meta.yaw) and abs(yaw) == pytest.approx(abs(meta.yaw), abs=0.5)
    meta.landmarks, meta.yaw, meta.pitch = mirrored, yaw, pitch
    meta.source_filename = "mirrored.png"
    write_face(src_faceset_dir / "mirrored_0.jpg", np.ascontiguousarray(image[:, ::-1]), meta)
    sort_faceset(src_faceset_dir, "face-yaw")
    names = [read_meta(p).source_filename for p in list_faces(src_faceset_dir)]
    original_at = names.index(metas[path].source_filename) / len(names)
    mirrored_at = names.index("mirrored.png") / len(names)
    assert (original_at < 0.1 and mirrored_at > 0.9) or (original_at > 0.9 and mirrored_at < 0.1)


def test_hist_groups_the_two_people(faceset_dir, faceset_cache):
    before = _all_keys(faceset_dir)
    dst_frames = {read_meta(faceset_cache.folder / n).source_filename for n in faceset_cache.dst}
    sort_faceset(faceset_dir, "hist")
    people = [read_meta(p).source_filename in dst_frames for p in _sorted_ok(faceset_dir, before)]
    switches = sum(a != b for a, b in zip(people, people[1:]))
    assert switches <= 2  # one run of each person (a chain may dip back once)


def test_hist_dissim_puts_faces_with_many_look_alikes_last(faceset_dir, faceset_cache):
    # The woman has 40 faces, the man 15: each of hers has many more look-alikes.
    before = _all_keys(faceset_dir)
    dst_frames = {read_meta(faceset_cache.folder / n).source_filename for n in faceset_cache.dst}
    sort_faceset(faceset_dir, "hist-dissim")
    is_dst = [read_meta(p).source_filename in dst_frames for p in _sorted_ok(faceset_dir, before)]
    assert sum(is_dst[:len(dst_frames)]) >= len(dst_frames) - 2
    assert not any(is_dst[-25:])


@pytest.mark.parametrize("method,change,where", [
    ("brightness", lambda im: (im * 0.4).astype(np.uint8), -1),
    ("brightness", lambda im: np.clip(im.astype(int) + 90, 0, 255).astype(np.uint8), 0),
    ("black", lambda im: np.concatenate([np.zeros_like(im[:, :60]), im[:, 60:]], axis=1), -1),
    # Turn the skin's hue ~180° round (orange → azure): the highest hue angle of the set.
    ("hue", lambda im: cv2.cvtColor(_shift_hue(cv2.cvtColor(im, cv2.COLOR_BGR2HSV_FULL)), cv2.COLOR_HSV2BGR_FULL), 0),
])
def test_pixel_methods_place_an_altered_face(faceset_dir, method, change, where):
    before = _all_keys(faceset_dir)
    victim = _alter(sorted(faceset_dir.iterdir())[5], change)
    sort_faceset(faceset_dir, method)
    assert _key(read_meta(_sorted_ok(faceset_dir, before)[where])) == victim


def _shift_hue(hsv):
    hsv = hsv.copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + 128) % 256
    return hsv


def test_source_rect_size_biggest_first(faceset_dir):
    before = _all_keys(faceset_dir)
    sort_faceset(faceset_dir, "source-rect-size")
    areas = [(m.source_rect[2] - m.source_rect[0]) * (m.source_rect[3] - m.source_rect[1])
             for m in map(read_meta, _sorted_ok(faceset_dir, before))]
    assert areas == sorted(areas, reverse=True)


def test_origname_restores_source_order(faceset_dir):
    before = _all_keys(faceset_dir)
    sort_faceset(faceset_dir, "blur")
    sort_faceset(faceset_dir, "origname")
    assert _keys(_sorted_ok(faceset_dir, before)) == sorted(before)


def test_one_face_trashes_frames_with_several_faces(src_faceset_dir, src_video, dst_video):
    import av

    frames = []
    for video in (src_video, dst_video):
        with av.open(str(video)) as c:
            frames.append(next(c.decode(video=0)).to_ndarray(format="bgr24"))
    both = np.concatenate(frames, axis=1)  # a frame showing both people
    faces = extract_faces(both, image_size=128, source_filename="both.png")
    assert len(faces) == 2
    for image, meta in faces:
        write_face(src_faceset_dir / f"both_{meta.face_index}.jpg", image, meta)
    before = _all_keys(src_faceset_dir)
    result = sort_faceset(src_faceset_dir, "one-face")
    _sorted_ok(src_faceset_dir, before)
    assert sorted(_keys(result.trashed)) == [("both.png", 0), ("both.png", 1)]
    assert len(result.kept) == len(before) - 2


def test_final_keeps_n_spread_over_yaw(faceset_dir):
    before = _all_keys(faceset_dir)
    all_yaw = np.array([read_meta(p).yaw for p in list_faces(faceset_dir)])
    result = sort_faceset(faceset_dir, "final", {"final_count": 20})
    kept = _sorted_ok(faceset_dir, before)
    assert len(kept) == 20 and len(result.trashed) == len(before) - 20
    yaw = np.array([read_meta(p).yaw for p in kept])
    assert (yaw.max() - yaw.min()) >= 0.8 * (all_yaw.max() - all_yaw.min())
    # Spread: every fifth of the yaw range that has faces keeps some.
    edges = np.linspace(all_yaw.min(), all_yaw.max() + 1e-6, 6)
    for lo, hi in zip(edges, edges[1:]):
        if ((all_yaw >= lo) & (all_yaw < hi)).any():
            assert ((yaw >= lo) & (yaw < hi)).any()


def test_final_keeps_everything_when_asked_for_more(faceset_dir):
    before = _all_keys(faceset_dir)
    result = sort_faceset(faceset_dir, "final", {"final_count": 2000})
    assert len(result.kept) == len(before) and not result.trashed


def test_identity_separates_the_two_people(faceset_dir, faceset_cache):
    result = sort_faceset(faceset_dir, "identity")
    src = {_key(read_meta(faceset_cache.folder / n)) for n in faceset_cache.src}
    dst = {_key(read_meta(faceset_cache.folder / n)) for n in faceset_cache.dst}
    assert set(_keys(result.kept)) == src
    assert set(_keys(result.trashed)) == dst


def test_unknown_method_suggests_the_right_one(faceset_dir):
    with pytest.raises(OptionError, match="did you mean 'face-yaw'"):
        sort_faceset(faceset_dir, "face-yaww")


def test_every_method_is_tested():
    tested = {"blur", "motion-blur", "face-yaw", "face-pitch", "hist", "hist-dissim", "brightness", "black", "hue",
              "source-rect-size", "origname", "one-face", "final", "identity"}
    assert set(SORT_METHODS.names()) == tested


# -- a bad face in the folder: skipped, left as it is, never lost ---------------------------------------------


def _break_faces(folder) -> dict:
    """Two faces made bad as a shared faceset can bring them: one whose yaw is a string (the file is otherwise
    whole; the bytes are swapped one for one so the metadata segment keeps its length), renamed ``00001.jpg``
    so it holds a name the sort would give; one cut short in the middle. Returns {path: bytes}."""
    faces = list_faces(folder)
    crafted = folder / "00001.jpg"
    faces[3].rename(crafted)
    data = crafted.read_bytes()
    number = re.search(rb'"yaw":(-?[0-9.eE+-]+)', data)
    crafted.write_bytes(data[:number.start(1)] + b'"' + b"x" * (len(number[1]) - 2) + b'"' + data[number.end(1):])
    cut = faces[8]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    return {crafted: crafted.read_bytes(), cut: cut.read_bytes()}


@pytest.mark.parametrize("method", SORT_METHODS.names())
def test_every_method_skips_a_bad_face_and_leaves_it_as_it_is(src_faceset_dir, method, caplog):
    before = _all_keys(src_faceset_dir)
    bad = _break_faces(src_faceset_dir)
    good = set(_keys(p for p in list_faces(src_faceset_dir) if p not in bad))
    assert len(good) == len(before) - 2
    result = sort_faceset(src_faceset_dir, method, {"final_count": 20})
    assert sorted(result.skipped) == sorted(bad)
    assert {p: p.read_bytes() for p in bad} == bad  # untouched, under its own name
    assert sorted(_keys(result.kept) + _keys(result.trashed)) == sorted(good)  # every other face kept or trashed
    assert "00001.jpg" not in [p.name for p in result.kept]  # the sort's numbering passed over the bad face
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for path, why in zip(bad, ("yaw", "cut short")):
        assert any(str(path) in w and why in w for w in warnings), (path, warnings)


def test_a_folder_of_only_bad_faces_is_a_one_line_error_and_moves_nothing(few_bad):
    with pytest.raises(InputError, match="none of the 2 faces could be read"):
        sort_faceset(few_bad, "blur")
    assert sorted(p.name for p in few_bad.iterdir()) == ["a.jpg", "b.jpg"]


@pytest.fixture
def few_bad(faceset_cache, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, source in zip(("a.jpg", "b.jpg"), faceset_cache.src):
        data = (faceset_cache.folder / source).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return folder
