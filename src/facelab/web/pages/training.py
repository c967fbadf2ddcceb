"""Training page: the live preview grid, loss graph and speed of a model in training, and its save / stop /
preview buttons. The trainer runs in another process (or `facelab train --ui`); the page talks to it only
through the files of train/control.py in the model folder, and shows the last save when no trainer runs.

The page lists the swap models of the model folder and, beside them, the XSeg face segmenter trained in its
``xseg/`` subfolder (`facelab xseg train` writes the same status, history and preview files).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facelab.errors import InputError
from facelab.train import checkpoint, control
from facelab.web.forms import posted, text_field
from facelab.web.pages import PAGES, Page
from facelab.xseg.options import MODEL_NAME as XSEG_NAME
from facelab.xseg.segmenter import xseg_folder

DEFAULT_FOLDER = "model"


def models_folder(ctx, folder: str | None) -> Path:
    """The model folder the page looks at: ``folder`` (``?folder=`` or the body's, inside the workspace) or
    WORKSPACE/model."""
    return ctx.path(folder or DEFAULT_FOLDER)


def listed_models(folder: Path) -> list[tuple[Path, str]]:
    """(folder, name) of each model the page offers: the models saved in ``folder``, then those in its ``xseg/``
    subfolder (the workspace's XSeg, which trains beside the swap models but is not one of them)."""
    return [(where, name) for where in (folder, xseg_folder(folder)) for name in checkpoint.find_models(where)]


def choose_model(listed: list[tuple[Path, str]], asked: str | None, asked_folder: Path | None = None
                 ) -> tuple[Path, str] | None:
    """The listed model named ``asked`` (in ``asked_folder`` when given); else the one written to last (the one
    in training, most likely); None when nothing is listed."""
    if asked:
        found = [(where, name) for where, name in listed
                 if name == asked and (asked_folder is None or where.resolve() == asked_folder.resolve())]
        if not found:
            raise InputError(f"no model {asked[:80]!r} in this folder",
                             fix=f"pick one of: {', '.join(name for _, name in listed) or 'none'}")
        return found[0]
    return max(listed, key=lambda entry: _last_written(*entry), default=None)


def _last_written(folder: Path, model: str) -> float:
    files = (control.status_path(folder, model), checkpoint.ModelFiles(folder, model).history)
    return max((p.stat().st_mtime for p in files if p.is_file()), default=0.0)


def saved_state(ctx, files: checkpoint.ModelFiles) -> dict[str, Any] | None:
    """Iteration, last losses and downsampled loss history of the last save (the history JSON), cached by the
    file's mtime: it holds one value per iteration and may be megabytes. None when there is no history yet."""
    try:
        stat = files.history.stat()
    except FileNotFoundError:
        return None
    key = ("training.history", str(files.history))
    with ctx.lock:
        cached = ctx.state.get(key)
    if cached and cached[0] == (stat.st_mtime_ns, stat.st_size):
        return cached[1]
    data = checkpoint.read_json(files.history)
    try:
        src, dst, iteration = list(data["loss_src"]), list(data["loss_dst"]), int(data["iteration"])
    except (KeyError, TypeError, ValueError):
        return None
    state = {"iteration": iteration, "loss_src": src[-1] if src else None, "loss_dst": dst[-1] if dst else None,
             "history": control.loss_points(src, dst, iteration), "saved_at": stat.st_mtime}
    with ctx.lock:
        ctx.state[key] = ((stat.st_mtime_ns, stat.st_size), state)
    return state


def describe(ctx, folder: Path, model: str, now: float) -> dict[str, Any]:
    """What the page shows for ``model``: the live status when its trainer runs, else the last save (with the
    last run's speed and why it stopped, when a status file remains)."""
    files = checkpoint.ModelFiles(folder, model)
    status = control.read_status(folder, model)
    running = control.is_alive(status, now)
    if running:
        out = dict(status)
        out["elapsed_seconds"] = round(now - float(status["started_at"]), 1)
    else:
        out = dict(status or {})
        saved = saved_state(ctx, files)
        if saved:
            out.update(saved)
        if status and status.get("running"):  # it said running but is gone: killed or hung
            out["stopped_by"] = "trainer gone"
    out["running"] = running
    preview = control.preview_path(folder, model)
    out["preview"] = ({"path": ctx.relative(preview), "mtime": preview.stat().st_mtime}
                      if preview.is_file() else None)
    out["model"] = model
    out["model_folder"] = ctx.relative(folder)
    out["segmenter"] = model == XSEG_NAME  # its preview rows and losses mean other things
    return out


def preview_history(ctx, folder: Path, model: str) -> list[str]:
    """Workspace-relative paths of ``preview_history/<MODEL>_<iteration>.png``, oldest first."""
    found = sorted((folder / "preview_history").glob(f"{model}_[0-9]*.png"))
    return [ctx.relative(p) for p in found]


def routes(ctx) -> list[Route]:
    def pick(params: dict) -> tuple[Path, list[tuple[Path, str]], tuple[Path, str] | None]:
        """(the folder asked, what it lists, the model asked or the latest): ``folder`` (default: MODEL_DIR),
        ``model`` a name and ``model_folder`` where it is, when two folders might hold that name."""
        folder = models_folder(ctx, params.get("folder"))
        listed = listed_models(folder)
        in_folder = params.get("model_folder")
        model = choose_model(listed, params.get("model") or None, ctx.path(in_folder) if in_folder else None)
        return folder, listed, model

    def status(request: Request) -> Response:
        folder, listed, model = pick(dict(request.query_params))
        body: dict[str, Any] = {"folder": ctx.relative(folder) if folder.exists() else None,
                                "models": [name for _, name in listed],
                                "listed": [{"name": name, "folder": ctx.relative(where),
                                            "segmenter": name == XSEG_NAME} for where, name in listed]}
        if model is not None:
            body.update(describe(ctx, *model, time.time()))
        return JSONResponse(body)

    def ask(data: dict) -> dict:
        _, _, model = pick({key: text_field(data, key) for key in ("folder", "model", "model_folder")})
        if model is None:
            raise InputError("no model in this folder", fix="start one with `facelab train --ui`")
        where, name = model
        if not control.is_alive(control.read_status(where, name)):
            fix = ("start `facelab xseg train` beside `facelab ui`" if name == XSEG_NAME else
                   "start it with `facelab train --ui` (or `facelab train` beside `facelab ui`)")
            raise InputError(f"no trainer is running for {name}", fix=fix)
        action = text_field(data, "action")
        control.write_request(where, name, action)
        return {"asked": action, "model": name}

    def history(request: Request) -> Response:
        _, _, model = pick(dict(request.query_params))
        return JSONResponse({"previews": preview_history(ctx, *model) if model else []})

    return [Route("/api/training/status", status), Route("/api/training/request", posted(ask), methods=["POST"]),
            Route("/api/training/history", history)]


PAGE = PAGES.register("training")(Page("training", "Training", "Live preview and loss graph of the model in training",
                                       routes))
