"""faceset debug-landmarks / png2jpg / info, and the `facelab sort` / `facelab faceset` commands."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from facelab.cli import main
from facelab.faceset import tools
from facelab.faceset.rename import trash_dir
from facelab.io.faceimage import list_faces, read_face, read_meta, write_face


@pytest.fixture
def few_faces(faceset_cache, tmp_path):
    """Six real faces at tmp_path/aligned."""
    folder = tmp_path / "aligned"
    folder.mkdir()
    for name in faceset_cache.src[:4] + faceset_cache.dst[:2]:
        shutil.copy2(faceset_cache.folder / name, folder / name)
    return folder


def test_debug_landmarks_draws_points_and_remove_takes_only_ours(few_faces):
    faces = list_faces(few_faces)
    written = tools.debug_landmarks(few_faces)
    assert sorted(p.name for p in written) == sorted(f"{p.stem}_debug.jpg" for p in faces)
    image, meta = read_face(faces[0])
    debug = cv2.imread(str(few_faces / f"{faces[0].stem}_debug.jpg"))
    x, y = np.round(meta.landmarks[30]).astype(int)  # nose tip: a green dot is drawn there
    assert debug[y, x, 1] > 200 and debug[y, x, 0] < 80 and debug[y, x, 2] < 80
    assert list_faces(few_faces) == faces  # debug pictures are not faces
    users_own = few_faces / "holiday_debug.jpg"
    cv2.imwrite(str(users_own), image)
    removed = tools.remove_debug(few_faces)
    assert sorted(removed) == sorted(written)
    assert users_own.exists() and all(p.exists() for p in faces)


def test_png2jpg_keeps_metadata_and_trashes_pngs(few_faces):
    pngs = []
    for path in list_faces(few_faces)[:3]:
        image, meta = read_face(path)
        path.unlink()
        write_face(path.with_suffix(".png"), image, meta)
        pngs.append((path.with_suffix(".png"), image, meta))
    written = tools.png_to_jpg(few_faces, quality=97)
    assert sorted(written) == sorted(p.with_suffix(".jpg") for p, _, _ in pngs)
    for png, image, meta in pngs:
        jpg_image, jpg_meta = read_face(png.with_suffix(".jpg"))
        assert jpg_meta.to_json() == meta.to_json()
        assert np.abs(jpg_image.astype(int) - image).mean() < 3
        assert (trash_dir(few_faces) / png.name).exists() and not png.exists()


def test_png2jpg_refuses_to_overwrite(few_faces):
    path = list_faces(few_faces)[0]
    image, meta = read_face(path)
    write_face(path.with_suffix(".png"), image, meta)
    from facelab.errors import OutputError

    with pytest.raises(OutputError, match="already exists"):
        tools.png_to_jpg(few_faces)
    assert path.with_suffix(".png").exists()


def _run(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_info_prints_metadata_and_names_a_bad_file(few_faces, tmp_path, capsys):
    face = list_faces(few_faces)[0]
    code, out, _ = _run(["faceset", "info", str(face)], capsys)
    assert code == 0 and read_meta(face).source_filename in out and '"landmarks"' in out
    plain = tmp_path / "plain.jpg"
    cv2.imwrite(str(plain), np.zeros((8, 8, 3), np.uint8))
    code, _, err = _run(["faceset", "info", str(plain)], capsys)
    assert code == 2 and err.startswith("error: ") and str(plain) in err and "no facelab metadata" in err
    assert len(err.strip().splitlines()) == 1
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(face.read_bytes().replace(b'"landmarks"', b'"landmarkz"'))
    code, _, err = _run(["faceset", "info", str(corrupt)], capsys)
    assert code == 2 and str(corrupt) in err and "corrupt facelab metadata" in err


def test_sort_command_runs_on_the_workspace(few_faces, tmp_path, capsys):
    workspace = tmp_path / "ws"
    shutil.copytree(few_faces, workspace / "data_src" / "aligned")
    code, out, _ = _run(["sort", "-w", str(workspace), "--by", "final", "--final-count", "4", "--yes"], capsys)
    assert code == 0 and "Sorted 4 faces" in out
    assert len(list_faces(workspace / "data_src" / "aligned")) == 4
    assert len(list_faces(workspace / "data_src" / "aligned_trash")) == 2
    code, _, err = _run(["sort", str(few_faces), "--by", "blurr", "--yes"], capsys)
    assert code == 2 and "did you mean 'blur'" in err
    code, _, err = _run(["sort", str(few_faces), "--yes"], capsys)
    assert code == 2 and "--by" in err


def test_faceset_commands_round_trip(few_faces, capsys):
    names = sorted(p.name for p in list_faces(few_faces))
    assert _run(["sort", str(few_faces), "--by", "hist", "-y"], capsys)[0] == 0
    assert _run(["faceset", "recover-names", str(few_faces)], capsys)[0] == 0
    assert sorted(p.name for p in list_faces(few_faces)) == names
    assert _run(["faceset", "debug-landmarks", str(few_faces)], capsys)[0] == 0
    assert len(list(few_faces.glob("*_debug.jpg"))) == len(names)
    assert _run(["faceset", "debug-landmarks", str(few_faces), "--remove"], capsys)[0] == 0
    assert not list(few_faces.glob("*_debug.jpg"))


def test_sort_prompts_for_method_and_count_at_a_terminal(few_faces, monkeypatch, capsys):
    import builtins

    from facelab.cli import _common
    from facelab.cli import sort as sort_cli

    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)
    monkeypatch.setattr(sort_cli, "interactive", lambda yes: not yes)
    answers = iter(["nonsense", "final", "?", "3"])
    prompts = []
    monkeypatch.setattr(builtins, "input", lambda text="": prompts.append(text) or next(answers))
    code, out, _ = _run(["sort", str(few_faces)], capsys)
    assert code == 0 and "[12] final" in out and "Sorted 3 faces" in out
    assert prompts[-1] == "Number of faces to keep (default 2000, ?:help): "
    assert len(list_faces(few_faces)) == 3


def test_debug_landmarks_never_writes_over_the_users_picture_or_through_a_link(few_faces, tmp_path, caplog):
    faces = list_faces(few_faces)
    image, _ = read_face(faces[0])
    users_own = few_faces / f"{faces[0].stem}_debug.jpg"
    cv2.imwrite(str(users_own), image)
    kept = users_own.read_bytes()
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(b"not facelab's")
    (few_faces / f"{faces[1].stem}_debug.jpg").symlink_to(elsewhere)
    written = tools.debug_landmarks(few_faces)
    assert len(written) == len(faces) - 2 and users_own.read_bytes() == kept
    assert elsewhere.read_bytes() == b"not facelab's" and "not a picture facelab drew" in caplog.text
    assert tools.remove_debug(few_faces) == sorted(written)
    assert users_own.exists() and elsewhere.exists() and (few_faces / f"{faces[1].stem}_debug.jpg").is_symlink()


def _cut_short(path) -> bytes:
    """Cut a face file in half (a copy interrupted, a disk error); returns what is left."""
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)
    return data


def _warned(caplog, path, why: str) -> bool:
    return any(str(path) in r.getMessage() and why in r.getMessage() for r in caplog.records
               if r.levelname == "WARNING")


def test_recover_names_skips_a_bad_face_and_gives_nobody_its_name(few_faces, caplog):
    from facelab.faceset.sort import sort_faceset

    originals = {read_meta(p).to_json()["source_filename"]: p.name for p in list_faces(few_faces)}
    sort_faceset(few_faces, "blur")  # names 00000.jpg ...: every face has renaming to do
    faces = list_faces(few_faces)
    victim, other = faces[0], faces[1]
    wanted = tools.original_name(read_meta(other), ".jpg")
    bad = victim.rename(few_faces / wanted)  # the bad face sits on the name another face wants back
    data = _cut_short(bad)
    changed = tools.recover_names(few_faces)
    assert changed == len(faces) - 1 and bad.read_bytes() == data
    names = sorted(p.name for p in list_faces(few_faces))
    assert f"{wanted[:-4]}_1.jpg" in names and len(names) == len(faces)
    assert set(names) - {wanted, f"{wanted[:-4]}_1.jpg"} < set(originals.values())
    assert _warned(caplog, bad, "cut short")


def test_debug_landmarks_and_png2jpg_skip_a_bad_face_and_do_the_rest(few_faces, caplog):
    faces = list_faces(few_faces)
    bad_jpg = faces[2]
    jpg_data = _cut_short(bad_jpg)
    written = tools.debug_landmarks(few_faces)
    assert sorted(written) == sorted(p.with_name(f"{p.stem}_debug.jpg") for p in faces if p != bad_jpg)
    assert bad_jpg.read_bytes() == jpg_data and _warned(caplog, bad_jpg, "cut short")
    tools.remove_debug(few_faces)
    pngs = []
    for path in faces[3:]:
        image, meta = read_face(path)
        path.unlink()
        write_face(path.with_suffix(".png"), image, meta)
        pngs.append(path.with_suffix(".png"))
    png_data = _cut_short(pngs[0])
    written = tools.png_to_jpg(few_faces)
    assert sorted(written) == sorted(p.with_suffix(".jpg") for p in pngs[1:])
    assert pngs[0].read_bytes() == png_data and not pngs[0].with_suffix(".jpg").exists()
    assert not (trash_dir(few_faces) / pngs[0].name).exists()
    assert _warned(caplog, pngs[0], "cut short")


def test_sort_command_counts_the_faces_it_skipped(few_faces, capsys):
    bad = list_faces(few_faces)[1]
    data = _cut_short(bad)
    code, out, err = _run(["sort", str(few_faces), "--by", "face-yaw", "--yes"], capsys)
    assert code == 0 and "Sorted 5 faces" in out and "Traceback" not in err
    assert f"Skipped 1 unreadable faces, left under their names: {bad.name}" in out
    assert bad.read_bytes() == data and len(list_faces(few_faces)) == 6
