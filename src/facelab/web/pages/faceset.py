"""Faceset page: browse an aligned folder as thumbnails, sort it by any SORT_METHODS method, move faces to the
trash folder and restore them.

The trash is the one ``facelab sort`` uses, ``<folder>_trash`` beside the folder (``rename.trash_dir``); nothing
is ever deleted. Faces are named by their file name inside the folder; the browser never sends a path for a face,
only the folder's workspace-relative path and plain file names, which are checked against the folder's listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facelab.errors import InputError, OutputError
from facelab.faceset import rename
from facelab.faceset.options import METHOD_OPTIONS, SORT_OPTIONS
from facelab.faceset.sort import SORT_METHODS, sort_faceset
from facelab.faceset.tools import draw_landmarks
from facelab.io.faceimage import FACE_SUFFIXES, list_faces, read_face
from facelab.options import validate
from facelab.progress import Progress, ProgressCallback
from facelab.web.folders import face_folders, is_faceset_folder, move_no_overwrite, read_shown_meta
from facelab.web.forms import object_field, option_json, posted, text_field
from facelab.web.pages import PAGES, Page

# How deep below the workspace root aligned folders are looked for (data_src/aligned is at depth 2).
PREVIEW_SIZE = 512  # smaller faces are enlarged to this for the double-click preview
_CHANGING = "faceset.changing"  # ctx.state key: folders a sort, trash or restore is changing right now


# -- pure helpers ------------------------------------------------------------------------------------------


def methods_json() -> list[dict[str, Any]]:
    """Every sort method in registry order with its help text and the options it reads."""
    by_name = {o.name: o for o in SORT_OPTIONS}
    return [{"name": name, "help": SORT_METHODS.get(name).help,
             "options": [option_json(by_name[o]) for o in METHOD_OPTIONS.get(name, [])]}
            for name in SORT_METHODS]


def file_version(path: Path) -> str:
    """A token that changes when a name comes to hold another face (after a sort): inode and mtime survive a
    rename, so two different faces never share it; the page adds it to thumbnail URLs to defeat the cache."""
    st = path.stat()
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}"


def face_entry(path: Path, relative: str) -> dict[str, Any]:
    """One grid cell: file name, workspace-relative path, cache token, and the metadata shown on hover; a face
    that cannot be shown (a link, unreadable, bad metadata) keeps its cell with None values and a ``problem``,
    so the user can trash it while the rest of the folder shows as usual."""
    entry: dict[str, Any] = {"name": path.name, "rel": relative, "v": None, "yaw": None,
                             "pitch": None, "source": None, "score": None, "size": None}
    meta, problem = read_shown_meta(path)
    if meta is None:
        entry["problem"] = problem
        return entry
    entry["v"] = file_version(path)
    entry.update(yaw=round(meta.yaw, 1), pitch=round(meta.pitch, 1), source=meta.source_filename,
                 face_index=meta.face_index, score=round(meta.score, 3), detector=meta.detector,
                 size=meta.image_size)
    return entry


def count_faces(folder: Path) -> int:
    return len(list_faces(folder)) if folder.is_dir() else 0


def pick(folder: Path, names: list[str]) -> list[Path]:
    """The faces called ``names`` in ``folder``; InputError for a name that is not a face there (this also
    refuses any name with a path in it)."""
    present = {p.name: p for p in list_faces(folder)} if folder.is_dir() else {}
    missing = [n for n in names if n not in present]
    if missing:
        shown = ", ".join(n[:80] for n in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InputError(f"not in this folder: {shown}",
                         path=folder.name, fix="reload the page; another step may have renamed the faces")
    if not names:
        raise InputError("no faces selected", fix="click a face first (Ctrl-click adds, Shift-click a range)")
    return [present[n] for n in dict.fromkeys(names)]


def restore_clashes(folder: Path, names: list[str]) -> list[str]:
    """Names that already exist in ``folder`` again (a restore must never overwrite them)."""
    return [n for n in names if (folder / n).exists()]


def restore(folder: Path, faces: list[Path], progress: ProgressCallback | None = None) -> list[Path]:
    """Move ``faces`` (files in the folder's trash) back into ``folder`` under their names, all or none:
    OutputError naming the clashes when any name is taken there again, before anything moves."""
    clashes = restore_clashes(folder, [p.name for p in faces])
    if clashes:
        shown = ", ".join(clashes[:5]) + (" …" if len(clashes) > 5 else "")
        raise OutputError(f"not restored: {shown} already in {folder.name} again",
                          fix="rename or trash the face of that name in the folder first, or restore the others "
                              "alone; nothing was moved")
    moved = []
    for done, src in enumerate(faces, 1):
        moved.append(move_no_overwrite(src, folder / src.name))
        if progress:
            progress(Progress("Restoring", done, len(faces)))
    return moved


def preview_jpeg(path: Path, landmarks: bool, least: int = PREVIEW_SIZE) -> bytes:
    """The whole aligned face as JPEG, enlarged to at least ``least`` px (so landmark dots stay fine on small
    faces), optionally with its 68 landmarks and hull drawn."""
    image, meta = read_face(path)
    if image.shape[1] < least:
        image = cv2.resize(image, (least, least * image.shape[0] // image.shape[1]), interpolation=cv2.INTER_CUBIC)
    if landmarks:
        image = draw_landmarks(image, meta.landmarks * (image.shape[1] / meta.image_size))
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


# -- routes ------------------------------------------------------------------------------------------------


def names_of(body: dict) -> list[str]:
    """The ``names`` a POST body lists (plain file names are checked later, against the folder's listing)."""
    names = body.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError("names must be a list of file names")
    return names


class _Folders:
    """The folder a request names, checked, and the claim that lets one change at a time run on a folder."""

    def __init__(self, ctx):
        self.ctx = ctx

    def of(self, value: Any) -> Path:
        if not isinstance(value, str) or not value.strip("/"):
            raise InputError("choose an aligned folder", fix="pick one in the folder list")
        folder = self.ctx.path(value)
        if not folder.is_dir():
            raise InputError("folder not found", path=value, fix="run the extract step first or pick another")
        if folder.name.endswith("_trash"):
            raise InputError("this is a trash folder", path=value, fix="open its faceset folder and use Trash view")
        if not is_faceset_folder(folder):
            raise InputError("not a faceset folder: it holds no aligned faces", path=value,
                             fix="pick one in the folder list; frames are never moved from here")
        return folder

    def claim(self, folder: Path) -> None:
        """Mark ``folder`` as being changed (a sort, trash or restore), or refuse while another change runs:
        a trash during a sort's renaming would move the wrong faces."""
        with self.ctx.lock:
            changing = self.ctx.state.setdefault(_CHANGING, set())
            if folder in changing:
                raise InputError("this folder is being sorted or changed", path=self.ctx.relative(folder),
                                 fix="wait until that finishes, then try again")
            changing.add(folder)

    def release(self, folder: Path) -> None:
        with self.ctx.lock:
            self.ctx.state[_CHANGING].discard(folder)


def _viewing_routes(ctx, folders: _Folders) -> list[Route]:
    """What the page reads: the folder list, the sort methods, a folder's (or its trash's) faces, a preview."""

    def folder_list(_request: Request) -> Response:
        return JSONResponse({"folders": [{"path": ctx.relative(f), "count": count_faces(f),
                                          "trash": count_faces(rename.trash_dir(f))}
                                         for f in face_folders(ctx.workspace.root)]})

    def methods(_request: Request) -> Response:
        return JSONResponse({"methods": methods_json()})

    def faces(request: Request) -> Response:
        folder = folders.of(request.query_params.get("folder"))
        trash = request.query_params.get("trash") == "1"
        shown = rename.trash_dir(folder) if trash else folder
        paths = list_faces(shown) if shown.is_dir() else []
        where = ctx.relative(shown) if shown.is_dir() else None  # a face's own path, links not followed
        return JSONResponse({"folder": ctx.relative(folder), "trash": trash,
                             "trash_path": ctx.relative(rename.trash_dir(folder)) if trash else None,
                             "trash_count": count_faces(rename.trash_dir(folder)),
                             "faces": [face_entry(p, f"{where}/{p.name}") for p in paths]})

    def preview(request: Request) -> Response:
        path = ctx.path(request.query_params.get("path", ""))
        if path.suffix.lower() not in FACE_SUFFIXES or not path.is_file():
            raise InputError("no such face", path=request.query_params.get("path"))
        jpeg = preview_jpeg(path, request.query_params.get("landmarks") == "1")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return [Route("/api/faceset/folders", folder_list), Route("/api/faceset/methods", methods),
            Route("/api/faceset/faces", faces), Route("/api/faceset/preview", preview)]


def _changing_routes(ctx, folders: _Folders) -> list[Route]:
    """What changes a folder, one change at a time per folder: sort (a job), trash, restore."""

    def start_sort(body: dict) -> dict[str, Any]:
        folder = folders.of(body.get("folder"))
        method = text_field(body, "method")
        SORT_METHODS.get(method)  # unknown name: "did you mean" now, not inside the job
        wanted = set(METHOD_OPTIONS.get(method, []))
        options = {k: v for k, v in object_field(body, "options").items() if k in wanted}
        validate(SORT_OPTIONS, options)  # a bad value is reported now, not by the job
        folders.claim(folder)

        def work(progress: ProgressCallback) -> dict[str, Any]:
            try:
                result = sort_faceset(folder, method, options, progress)
            finally:
                folders.release(folder)
            return {"kept": len(result.kept), "trashed": len(result.trashed), "method": method,
                    "skipped": [p.name for p in result.skipped]}

        return {"job": ctx.jobs.start(work).id}

    def trash_faces(body: dict) -> dict[str, Any]:
        folder = folders.of(body.get("folder"))
        folders.claim(folder)
        try:
            moved = rename.move_to_trash(folder, pick(folder, names_of(body)))
        finally:
            folders.release(folder)
        return {"moved": [p.name for p in moved], "trash": ctx.relative(rename.trash_dir(folder))}

    def restore_faces(body: dict) -> dict[str, Any]:
        folder = folders.of(body.get("folder"))
        folders.claim(folder)
        try:
            moved = restore(folder, pick(rename.trash_dir(folder), names_of(body)))
        finally:
            folders.release(folder)
        return {"restored": [p.name for p in moved]}

    return [Route("/api/faceset/sort", posted(start_sort), methods=["POST"]),
            Route("/api/faceset/trash", posted(trash_faces), methods=["POST"]),
            Route("/api/faceset/restore", posted(restore_faces), methods=["POST"])]


def routes(ctx) -> list[Route]:
    folders = _Folders(ctx)
    return [*_viewing_routes(ctx, folders), *_changing_routes(ctx, folders)]


PAGE = PAGES.register("faceset")(Page("faceset", "Faceset", "Browse, sort and trash aligned faces", routes))
