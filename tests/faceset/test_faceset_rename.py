"""Renames never lose or overwrite a face: a crash mid-rename leaves every face present and recoverable."""

from __future__ import annotations

import os

import pytest

from facelab.errors import OutputError
from facelab.faceset import rename
from facelab.faceset.sort import sort_faceset
from facelab.faceset.tools import recover_names
from facelab.io.faceimage import list_faces, read_face, read_meta, write_face


def _identities(folder) -> list[tuple[str, int]]:
    return sorted((m.source_filename, m.face_index) for m in map(read_meta, list_faces(folder)))


def _crash_after(monkeypatch, calls: int) -> None:
    real = os.rename
    count = {"n": 0}

    def flaky(src, dst):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(5, "Input/output error (simulated crash)")
        real(src, dst)

    monkeypatch.setattr(rename.os, "rename", flaky)


@pytest.mark.parametrize("crash_after", [7, 70])  # in phase 1 (to temporary names) / in phase 2 (to final names)
def test_crash_mid_rename_loses_nothing_and_recover_names_fixes_it(faceset_dir, monkeypatch, crash_after):
    original_names = sorted(p.name for p in list_faces(faceset_dir))
    before = _identities(faceset_dir)
    assert len(before) > 40
    _crash_after(monkeypatch, crash_after)
    with pytest.raises(OutputError, match="simulated crash"):
        sort_faceset(faceset_dir, "face-yaw")
    monkeypatch.undo()
    # Every face is still there, under an old, temporary or new name; nothing was overwritten.
    assert (faceset_dir / rename.JOURNAL_NAME).exists()
    assert _identities(faceset_dir) == before
    assert any(p.name.startswith("_facelab_tmp_") for p in faceset_dir.iterdir())
    assert recover_names(faceset_dir) > 0
    assert not (faceset_dir / rename.JOURNAL_NAME).exists()
    assert sorted(p.name for p in list_faces(faceset_dir)) == original_names
    assert _identities(faceset_dir) == before


def test_next_sort_finishes_an_interrupted_one(faceset_dir, monkeypatch):
    before = _identities(faceset_dir)
    _crash_after(monkeypatch, 80)
    with pytest.raises(OutputError):
        sort_faceset(faceset_dir, "face-pitch")
    monkeypatch.undo()
    result = sort_faceset(faceset_dir, "face-pitch")
    assert [p.name for p in list_faces(faceset_dir)] == [f"{i:05d}.jpg" for i in range(len(before))]
    assert _identities(faceset_dir) == before and len(result.kept) == len(before)
    pitch = [read_meta(p).pitch for p in result.kept]
    assert pitch == sorted(pitch)


def test_rename_never_overwrites_a_stranger(tmp_path, faceset_cache):
    folder = tmp_path / "aligned"
    folder.mkdir()
    image, meta = read_face(faceset_cache.folder / faceset_cache.src[0])
    write_face(folder / "a.jpg", image, meta)
    (folder / "notes.jpg").write_bytes(b"the user's own file")
    with pytest.raises(OutputError, match="notes.jpg is in the way"):
        rename.rename_all(folder, [folder / "a.jpg"], ["notes.jpg"])
    assert (folder / "a.jpg").exists() and (folder / "notes.jpg").read_bytes() == b"the user's own file"


def test_trash_keeps_both_faces_on_a_name_clash(tmp_path, faceset_cache):
    folder = tmp_path / "aligned"
    folder.mkdir()
    image, meta = read_face(faceset_cache.folder / faceset_cache.src[0])
    for _ in range(2):
        write_face(folder / "00000.jpg", image, meta)
        rename.move_to_trash(folder, [folder / "00000.jpg"])
    assert sorted(p.name for p in rename.trash_dir(folder).iterdir()) == ["00000.jpg", "00000_1.jpg"]
    assert rename.trash_dir(folder) == tmp_path / "aligned_trash"


def test_recover_names_after_a_sort(faceset_dir):
    original_names = sorted(p.name for p in list_faces(faceset_dir))
    sort_faceset(faceset_dir, "blur")
    assert sorted(p.name for p in list_faces(faceset_dir)) != original_names
    recover_names(faceset_dir)
    assert sorted(p.name for p in list_faces(faceset_dir)) == original_names
    for path in list_faces(faceset_dir):
        meta = read_meta(path)
        assert path.name == f"{meta.source_filename[:-4]}_{meta.face_index}.jpg"
