"""What every page's API shares: the one POST helper (a bounded, validated JSON object in; JSON or a response
out), typed reads of query and body values, and options described for a generated form.

Every malformed request ends as InputError (HTTP 400, one line naming what was wrong), never as a traceback.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from facelab.errors import InputError
from facelab.options import Option

MAX_BODY = 4 * 1024 * 1024  # bytes: the largest body a page sends is a mask's polygons (≤ 20,000 points ≈ 400 kB)
MAX_DEPTH = 8  # nesting of objects/lists: polygons are body → polygons → kind → polygon → point (5)
MAX_NUMBER = 1e9  # no field of any page takes a number beyond this (frame numbers, pixels, option values)
MAX_DIGITS = 12  # digits of an integer literal, checked before Python converts it


def parse_json_object(data: bytes) -> dict[str, Any]:
    """The JSON object in ``data``; InputError when it is too large, not JSON, nested deeper than MAX_DEPTH, holds
    NaN/Infinity or a number beyond ±MAX_NUMBER, or is not an object."""
    if len(data) > MAX_BODY:
        raise InputError(f"the request body is larger than {MAX_BODY // 1024 // 1024} MB")
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except RecursionError:
        raise InputError(f"the request body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # UnicodeDecodeError included
        raise InputError(f"the request body is not valid JSON ({err})", fix="reload the page") from None
    if not isinstance(value, dict):
        raise InputError("the request body must be a JSON object", fix="reload the page")
    if _depth(value) > MAX_DEPTH:
        raise InputError(f"the request body is nested more than {MAX_DEPTH} levels deep")
    return value


def _no_constant(name: str) -> float:
    raise InputError(f"the request body holds {name}, which is not a number", fix="send finite numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise InputError(f"the number {text[:24]} is out of range (at most ±{MAX_NUMBER:g})")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS or abs(value := int(text)) > MAX_NUMBER:
        raise InputError(f"the number {text[:24]} is out of range (at most ±{MAX_NUMBER:g})")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (1 for a flat object); stops counting past MAX_DEPTH."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


async def read_body(request: Request) -> bytes:
    """The raw body, refused (InputError) as soon as it passes MAX_BODY: a huge upload is never held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise InputError(f"the request body is larger than {MAX_BODY // 1024 // 1024} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise InputError(f"the request body is larger than {MAX_BODY // 1024 // 1024} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def posted(action: Callable[[dict[str, Any]], dict[str, Any] | Response]):
    """A POST endpoint: the body checked by ``parse_json_object``, then ``action(body)`` in a worker thread (file
    moves, models and encoders block); a dict answer is sent as JSON, a Response as it is. Content type and
    origin were checked by the server's guard before."""
    async def endpoint(request: Request) -> Response:
        body = parse_json_object(await read_body(request))
        answer = await run_in_threadpool(action, body)
        return answer if isinstance(answer, Response) else JSONResponse(answer)
    return endpoint


def object_field(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]`` when it is a JSON object, ``{}`` when absent or null; InputError otherwise."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"'{name}' must be a JSON object, got {type(value).__name__}", fix="reload the page")
    return value


def text_field(body: dict[str, Any], name: str, default: str = "") -> str:
    """``body[name]`` when it is a string (``default`` when absent or null); InputError otherwise."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"'{name}' must be a string, got {type(value).__name__}", fix="reload the page")
    return value


def query_int(request: Request, name: str, default: int) -> int:
    """The whole number in ``?name=`` (``default`` when absent); InputError for anything else."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    if len(text) > MAX_DIGITS or not text.lstrip("-").isdigit() or not text.isascii():
        raise InputError(f"{name} must be a whole number, got {text[:24]!r}")
    return int(text)


def option_json(option: Option) -> dict[str, Any]:
    """One declared option as a page draws its form field: ``kind`` is bool, int, float or str; ``min``/``max``
    or ``choices`` when declared; ``help`` becomes the tooltip."""
    return {"name": option.name, "label": option.label, "help": option.help, "kind": option.kind.__name__,
            "default": option.default, "min": option.min, "max": option.max,
            "choices": list(option.choices) if option.choices is not None else None}
