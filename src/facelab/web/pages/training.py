"""Training page: the live preview grid, loss graph and speed of a model in training, and its save / stop /
preview buttons. The trainer runs in another process (or `facelab train --ui`); the page talks to it only
through the files of train/control.py in the model folder, and shows the last save when no trainer runs.
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

DEFAULT_FOLDER = "model"


def models_folder(ctx, folder: str | None) -> Path:
    """The model folder the page looks at: ``folder`` (``?folder=`` or the body's, inside the workspace) or
    WORKSPACE/model."""
    return ctx.path(folder or DEFAULT_FOLDER)


def choose_model(folder: Path, models: list[str], asked: str | None) -> str | None:
    """``asked`` when it is one of ``models``; else the one written to last (the one in training, most likely);
    None when the folder holds no model."""
    if asked:
        if asked not in models:
            raise InputError(f"no model {asked[:80]!r} in this folder",
                             fix=f"pick one of: {', '.join(models) or 'none'}")
        return asked
    return max(models, key=lambda name: _last_written(folder, name), default=None)


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
    return out


def preview_history(ctx, folder: Path, model: str) -> list[str]:
    """Workspace-relative paths of ``preview_history/<MODEL>_<iteration>.png``, oldest first."""
    found = sorted((folder / "preview_history").glob(f"{model}_[0-9]*.png"))
    return [ctx.relative(p) for p in found]


def routes(ctx) -> list[Route]:
    def status(request: Request) -> Response:
        folder = models_folder(ctx, request.query_params.get("folder"))
        models = checkpoint.find_models(folder)
        model = choose_model(folder, models, request.query_params.get("model"))
        body: dict[str, Any] = {"folder": ctx.relative(folder) if folder.exists() else None, "models": models}
        if model is not None:
            body.update(describe(ctx, folder, model, time.time()))
        return JSONResponse(body)

    def ask(data: dict) -> dict:
        folder = models_folder(ctx, text_field(data, "folder"))
        model = choose_model(folder, checkpoint.find_models(folder), text_field(data, "model") or None)
        if model is None:
            raise InputError("no model in this folder", fix="start one with `facelab train --ui`")
        if not control.is_alive(control.read_status(folder, model)):
            raise InputError(f"no trainer is running for {model}",
                             fix="start it with `facelab train --ui` (or `facelab train` beside `facelab ui`)")
        action = text_field(data, "action")
        control.write_request(folder, model, action)
        return {"asked": action, "model": model}

    def history(request: Request) -> Response:
        folder = models_folder(ctx, request.query_params.get("folder"))
        model = choose_model(folder, checkpoint.find_models(folder), request.query_params.get("model"))
        return JSONResponse({"previews": preview_history(ctx, folder, model) if model else []})

    return [Route("/api/training/status", status), Route("/api/training/request", posted(ask), methods=["POST"]),
            Route("/api/training/history", history)]


PAGE = PAGES.register("training")(Page("training", "Training", "Live preview and loss graph of the model in training",
                                       routes))
