"""The UI's door: every request must be addressed to the UI itself and carry the session's token; every request
that changes something must also come from the UI's own pages and be JSON.

- ``Host`` must name this UI (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT`` or the ``--host`` it listens
  on): a page of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name.
- The token arrives once in the printed URL (``?token=``) and is then kept in an HttpOnly, same-site cookie named
  after the port (two UIs on two ports keep their own); scripts may send it as the ``X-Facelab-Token`` header.
- A POST needs ``Content-Type: application/json`` (a form or ``text/plain`` POST from another page is refused:
  browsers send those cross-site without asking) and an ``Origin`` (or, without one, a ``Referer``) of this UI —
  a page on 127.0.0.1 at another port is "same site" for the browser, not the same origin. A request carrying
  the token header may omit both: a page of another origin cannot set that header without a CORS preflight,
  which this server never grants.
- A WebSocket needs the same Host and token, and an ``Origin`` of this UI (or the token header): browsers send the
  cookie with a WebSocket opened by any page of the same site and never ask CORS, so its Origin is the only check.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE_PREFIX = "facelab_token_"
HEADER = "x-facelab-token"
SAFE_METHODS = ("GET", "HEAD")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def cookie_name(port: int) -> str:
    """The token cookie of the UI on ``port``: cookies ignore ports, so one name per port keeps two UIs apart."""
    return f"{COOKIE_PREFIX}{port}"


def split_host(value: str) -> tuple[str, int | None]:
    """``("name", port)`` of a ``Host`` value or URL netloc (``[::1]:7777`` → ``("[::1]", 7777)``); port None
    when absent or not a number."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return name, int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Address:
    """Where the UI is reached: the host names a browser may use for it, and its port. When it listens on every
    interface (``--host 0.0.0.0``), any IP address at its port is its own too: a DNS rebinding needs a name."""

    names: frozenset[str]
    port: int
    any_ip: bool = False

    @classmethod
    def of(cls, host: str, port: int) -> "Address":
        host = host.strip().lower()
        names = set(LOOPBACK_NAMES)
        if host in WILDCARDS:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        else:
            names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
        return cls(frozenset(names), port, any_ip=host in WILDCARDS)

    def allows(self, host_value: str) -> bool:
        """Whether a ``Host`` header (or an origin's host[:port]) names this UI."""
        name, port = split_host(host_value)
        if port is None and ":" not in host_value.strip().rsplit("]", 1)[-1]:
            port = 80  # a browser leaves out the default port
        return port == self.port and (name in self.names or (self.any_ip and _is_ip(name)))

    def allows_origin(self, origin: str) -> bool:
        """Whether an ``Origin`` (or a ``Referer`` URL) is one of this UI's own pages."""
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return parts.scheme == "http" and bool(parts.netloc) and self.allows(parts.netloc)

    def shown(self) -> str:
        return f"http://127.0.0.1:{self.port}/ or http://localhost:{self.port}/"


def _stranger(request: HTTPConnection, address: Address, token: str) -> tuple[int, str] | None:
    """(status, reason) when ``request`` (HTTP or WebSocket) is not addressed to this UI or lacks the token."""
    host = request.headers.get("host", "")
    if not address.allows(host):
        return 403, (f"403: Host {host[:100]!r} is not this facelab UI's address ({address.shown()}) — open the URL "
                     f"facelab printed; over SSH forward the same port: ssh -L {address.port}:127.0.0.1:"
                     f"{address.port} HOST")
    by_header = request.headers.get(HEADER)
    sent = by_header or request.cookies.get(cookie_name(address.port)) or ""
    if not secrets.compare_digest(sent.encode(), token.encode()):
        return 403, "403: this facelab UI needs the token from the URL it printed at start"
    return None


def refusal(request: Request, address: Address, token: str) -> tuple[int, str] | None:
    """(status, one-line reason) when ``request`` must be refused, None when it may pass. The ``?token=`` login
    is handled by the guard before the token check."""
    refused = _stranger(request, address, token)
    if refused is not None or request.method in SAFE_METHODS:
        return refused
    by_header = request.headers.get(HEADER)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return 415, (f"415: this UI takes only JSON requests (Content-Type: application/json), not "
                     f"{kind[:60] or 'none'!r}")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return None if by_header else (403, "403: a request without Origin or Referer cannot change anything here")
    if not address.allows_origin(origin):
        return 403, f"403: a page of {origin[:100]!r} may not change this UI's workspace (only {address.shown()})"
    return None


def socket_refusal(request: HTTPConnection, address: Address, token: str) -> tuple[int, str] | None:
    """(status, one-line reason) when a WebSocket handshake must be refused, None when it may open."""
    refused = _stranger(request, address, token)
    if refused is not None:
        return refused
    origin = request.headers.get("origin")
    if origin is None:
        return None if request.headers.get(HEADER) else (403, "403: a WebSocket without Origin needs the token header")
    if not address.allows_origin(origin):
        return 403, f"403: a page of {origin[:100]!r} may not open this UI's WebSockets (only {address.shown()})"
    return None


class Guard:
    """ASGI middleware applying ``refusal`` to every HTTP request and ``socket_refusal`` to every WebSocket
    handshake; a valid ``?token=`` sets the cookie and redirects to the same URL without it."""

    def __init__(self, app: ASGIApp, token: str, address: Address):
        self.app, self.token, self.address = app, token, address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            refused = socket_refusal(HTTPConnection(scope), self.address, self.token)
            if refused is None:
                await self.app(scope, receive, send)
            else:  # closed before the handshake: the server answers 403 (a browser shows scripts no reason)
                await send({"type": "websocket.close", "code": 1008, "reason": refused[1][:120]})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        own_host = self.address.allows(request.headers.get("host", ""))
        if (given is not None and request.method in SAFE_METHODS and own_host
                and secrets.compare_digest(given.encode(), self.token.encode())):
            query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(cookie_name(self.address.port), self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        refused = refusal(request, self.address, self.token)
        if refused is not None:
            await PlainTextResponse(refused[1], status_code=refused[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)
