"""Names read from files a stranger can ship with a faceset (the rename journal, a face's metadata) are plain
names of that folder or nothing: a crafted one never moves a file in from outside or writes one out of it."""

from __future__ import annotations

import json
import shutil

import pytest

from facelab.errors import WorkspaceError
from facelab.faceset import rename
from facelab.faceset.sort import sort_faceset
from facelab.faceset.tools import original_name
from facelab.io.faceimage import list_faces, read_face, read_meta, write_meta
from facelab.names import is_plain_name


def _snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _outside(tmp_path, faceset) -> dict[str, bytes]:
    """Every file under tmp_path that is not in the faceset or its trash folder."""
    inside = (faceset.name, rename.trash_dir(faceset).name)
    return {k: v for k, v in _snapshot(tmp_path).items() if k.split("/")[0] not in inside}


@pytest.mark.parametrize("name,plain", [
    ("00001_0.jpg", True), ("..hidden.jpg", True), ("visage_٣.jpg", True),
    ("", False), (".", False), ("..", False), ("../x.jpg", False), ("/etc/passwd", False), ("a\\..\\b", False),
    ("a\0b", False), ("x" * 256, False), ("\ud800.jpg", False), (7, False), (None, False),
])
def test_plain_names(name, plain):
    assert is_plain_name(name) is plain


def test_crafted_journal_moves_nothing_in_and_writes_nothing_out(faceset_dir, tmp_path, faceset_cache):
    victim = tmp_path / "victim.jpg"
    shutil.copy(faceset_cache.folder / faceset_cache.src[0], victim)
    (tmp_path / "x").mkdir()
    faces = list_faces(faceset_dir)
    identities = sorted((m.source_filename, m.face_index) for m in map(read_meta, faces))
    tmp = rename._TMP_PREFIX + "evil_"
    journal = {"phase": 1, "moves": [
        ["../victim.jpg", tmp + "0.jpg", "00000.jpg"],  # would pull a file in from outside
        [faces[0].name, tmp + "1.jpg", "../x/pwned.jpg"],  # would push a face out
        [faces[1].name, "../" + tmp + "2.jpg", "b.jpg"],  # out through the temporary name
        [faces[2].name, tmp + "3.jpg", str(tmp_path / "x" / "abs.jpg")],  # an absolute path
        [faces[3].name, "user_file.jpg", "c.jpg"],  # not one of our temporary names
        [faces[5].name, tmp + "6.jpg", tmp + "6.jpg"],  # would leave phase 2 stuck on a name "in the way"
        "not an entry", [faces[4].name, tmp + "5.jpg"],
    ]}
    (faceset_dir / rename.JOURNAL_NAME).write_text(json.dumps(journal))
    outside = _outside(tmp_path, faceset_dir)
    result = sort_faceset(faceset_dir, "face-yaw")
    assert _outside(tmp_path, faceset_dir) == outside  # victim.jpg untouched, nothing new in x/ or beside
    assert victim.read_bytes() == (faceset_cache.folder / faceset_cache.src[0]).read_bytes()
    assert not (faceset_dir / rename.JOURNAL_NAME).exists()
    after = list_faces(faceset_dir)
    assert after == result.kept and len(after) == len(faces)
    assert sorted((m.source_filename, m.face_index) for m in map(read_meta, after)) == identities


def test_journal_nested_100000_deep_is_a_one_line_error(faceset_dir):
    (faceset_dir / rename.JOURNAL_NAME).write_text("[" * 100_000 + "]" * 100_000)
    before = _snapshot(faceset_dir)
    with pytest.raises(WorkspaceError, match="unreadable rename journal"):
        sort_faceset(faceset_dir, "face-pitch")
    assert _snapshot(faceset_dir) == before


_PAD = 300


def _with_meta(path, **fields) -> None:
    """Rewrite a real JPEG face's metadata JSON with ``fields`` set as given, however wrong: what a crafted file
    holds, written byte by byte since facelab itself refuses to write such metadata. ``tool_version`` is
    padded first and shortened after, so every segment keeps its length."""
    _, meta = read_face(path)
    meta.tool_version = "X" * _PAD
    write_meta(path, meta)
    data, delta = path.read_bytes(), 0
    for name, value in fields.items():
        old = f'"{name}":{json.dumps(getattr(meta, name))}'.encode()
        new = f'"{name}":{json.dumps(value)}'.encode()
        assert data.count(old) == 1, "the face's metadata is no longer plain JSON in the file: update this helper"
        data, delta = data.replace(old, new), delta + len(new) - len(old)
    pad = f'"tool_version":"{"X" * _PAD}"'.encode()
    data = data.replace(pad, f'"tool_version":"{"X" * (_PAD - delta)}"'.encode())
    path.write_bytes(data)


@pytest.mark.parametrize("fields", [{"face_index": "/../../x/pwned"}, {"source_filename": "../../x/pwned.png"},
                                    {"source_filename": "/tmp/x/pwned.png"}, {"face_index": "0/../../../x/p"}])
def test_hostile_face_names_never_leave_the_folder(faceset_dir, tmp_path, run_cli, fields):
    (tmp_path / "x").mkdir()
    (faceset_dir / "00001_").mkdir()  # a crafted faceset can bring the folder a `..` walk needs
    faces = list_faces(faceset_dir)
    _with_meta(faces[0], **fields)
    outside = _outside(tmp_path, faceset_dir)
    code, _, err = run_cli("faceset", "recover-names", str(faceset_dir))
    # Refused with one line when the metadata check rejects the face, or done with that face keeping its name.
    assert code in (0, 2) and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert _outside(tmp_path, faceset_dir) == outside and not any((tmp_path / "x").iterdir())
    assert faces[0].exists() and len(list_faces(faceset_dir)) == len(faces)


def test_original_name_is_none_unless_plain(faceset_cache):
    _, meta = read_face(faceset_cache.folder / faceset_cache.src[0])
    assert original_name(meta, ".JPG") == f"{meta.source_filename[:-4]}_{meta.face_index}.jpg"
    for name, value in (("face_index", "/../../x/pwned"), ("source_filename", "../frames/00001.png"),
                        ("source_filename", "")):
        crafted = read_face(faceset_cache.folder / faceset_cache.src[0])[1]
        setattr(crafted, name, value)  # after the metadata check, as a later bug or caller could
        assert original_name(crafted, ".jpg") is None


def test_recover_names_skips_a_face_whose_name_would_leave_the_folder(faceset_dir, tmp_path, monkeypatch, caplog):
    """Even metadata that got past the read check (or came from a caller) cannot walk a rename out."""
    from facelab.faceset import tools

    (tmp_path / "x").mkdir()
    (faceset_dir / "00001_").mkdir()
    sort_faceset(faceset_dir, "blur")  # names 00000.jpg ...: recover-names has renaming to do
    faces = list_faces(faceset_dir)
    hostile = faces[0]

    def crafted(path):
        meta = read_meta(path)
        if path == hostile:
            meta.source_filename, meta.face_index = "00001.png", "/../../x/pwned"
        return meta

    monkeypatch.setattr(tools, "read_meta", crafted)
    outside = _outside(tmp_path, faceset_dir)
    changed = tools.recover_names(faceset_dir)
    assert changed == len(faces) - 1 and hostile.exists()
    assert "give no plain file name" in caplog.text
    assert _outside(tmp_path, faceset_dir) == outside and not any((tmp_path / "x").iterdir())
    assert len(list_faces(faceset_dir)) == len(faces)
