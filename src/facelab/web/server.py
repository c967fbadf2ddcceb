"""The UI server: a Starlette app over one workspace, guarded by a random token (like Jupyter's) and by the
checks of ``facelab.web.guard`` (its own Host, JSON POSTs from its own pages only).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from facelab.errors import FacelabError, InputError
from facelab.web.forms import query_int
from facelab.web.guard import Address, Guard
from facelab.web.jobs import Jobs
from facelab.web.pages import load_pages
from facelab.web.paths import PathRefused, inside_workspace
from facelab.workspace import Workspace

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DEFAULT_PORT = 7777
PORT_TRIES = 20
THUMB_SIZES = (64, 96, 128, 192, 256)


@dataclass
class UiContext:
    """What every page's routes share: the workspace, background jobs and page-owned state (e.g. loaded models)."""

    workspace: Workspace
    jobs: Jobs = field(default_factory=Jobs)
    state: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def path(self, relative: str) -> Path:
        """A path sent by the browser, inside the workspace (PathRefused otherwise)."""
        return inside_workspace(self.workspace.root, relative)

    def relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.workspace.root.resolve()).as_posix()


def _refused(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc), "text": str(exc)}, status_code=403)


def _failed(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FacelabError)
    return JSONResponse({"error": exc.message, "fix": exc.fix, "text": str(exc)}, status_code=400)


def create_app(workspace: Path, token: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> Starlette:
    """The whole UI for ``workspace``, answering only as ``host``:``port`` (and the loopback names at that port);
    ``ctx`` is reachable as ``app.state.ctx`` (tests use it)."""
    ctx = UiContext(Workspace(Path(workspace)))
    pages = load_pages()

    def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    def page_html(page_name: str):
        def serve(_request: Request) -> Response:
            return FileResponse(STATIC / f"{page_name}.html", headers={"Cache-Control": "no-store"})
        return serve

    def info(_request: Request) -> Response:
        ws = ctx.workspace
        return JSONResponse({
            "workspace": str(ws.root.resolve()),
            "pages": [{"name": p.name, "title": p.title, "help": p.help} for p in pages],
            "counts": {name: _count_files(folder) for name, folder in
                       (("src frames", ws.frames("src")), ("src faces", ws.aligned("src")),
                        ("dst frames", ws.frames("dst")), ("dst faces", ws.aligned("dst")),
                        ("merged frames", ws.merged))},
        })

    def file(request: Request) -> Response:
        path = ctx.path(request.path_params["path"])
        if not path.is_file():
            raise InputError("no such file in the workspace", path=request.path_params["path"])
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    def thumb(request: Request) -> Response:
        path = ctx.path(request.path_params["path"])
        size = query_int(request, "size", 128)
        if size not in THUMB_SIZES:
            raise InputError(f"thumbnail size must be one of {THUMB_SIZES}")
        return Response(thumbnail_jpeg(path, size), media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    def job(request: Request) -> Response:
        found = ctx.jobs.get(int(request.path_params["id"]))
        if found is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(found.as_json())

    routes = [Route("/", index), Route("/api/info", info), Route("/files/{path:path}", file),
              Route("/thumb/{path:path}", thumb), Route("/api/jobs/{id:int}", job),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    for page in pages:
        routes.append(Route(f"/{page.name}", page_html(page.name)))
        routes.extend(page.routes(ctx))
    app = Starlette(routes=routes, middleware=[Middleware(Guard, token=token, address=Address.of(host, port))],
                    exception_handlers={PathRefused: _refused, FacelabError: _failed})
    app.state.ctx = ctx
    return app


def thumbnail_jpeg(path: Path, size: int) -> bytes:
    """A JPEG of the image at ``path`` fitted into size × size (InputError when it is not an image)."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.empty(0, np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV will decode
        image = None
    if image is None:
        raise InputError("not an image", path=path.name)
    scale = size / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``port`` or, when it is taken, one of the next PORT_TRIES ports (0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for candidate in [port] if port == 0 else range(port, port + PORT_TRIES):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.listen(128)
        return sock
    raise InputError(f"cannot listen on {host} ports {port}–{port + PORT_TRIES - 1}: {last}",
                     fix="choose another --port")


@dataclass
class RunningUi:
    """A started server: its URL (with the token) and how to stop it."""

    url: str
    token: str
    server: Any
    thread: threading.Thread | None = None

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def start(workspace: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          background: bool = False, announce: Callable[[str], None] = log.info) -> RunningUi:
    """Serve the UI; blocks until Ctrl-C unless ``background`` (then it runs in a daemon thread, which leaves
    Ctrl-C to the main thread, e.g. the training loop)."""
    import uvicorn

    token = token or secrets.token_urlsafe(24)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{sock.getsockname()[1]}/?token={token}"
    app = create_app(workspace, token, host, sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    running = RunningUi(url, token, server)
    announce(url)
    if background:
        running.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="facelab-ui",
                                          daemon=True)
        running.thread.start()
    else:
        server.run(sockets=[sock])
    return running
