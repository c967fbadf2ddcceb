"""What every page's API shares: reading a JSON request body, and options described for a generated form."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from facelab.errors import InputError
from facelab.options import Option


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; InputError (HTTP 400) when the body is not one."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object", fix="reload the page")
    return body


def option_json(option: Option) -> dict[str, Any]:
    """One declared option as a page draws its form field: ``kind`` is bool, int, float or str; ``min``/``max``
    or ``choices`` when declared; ``help`` becomes the tooltip."""
    return {"name": option.name, "label": option.label, "help": option.help, "kind": option.kind.__name__,
            "default": option.default, "min": option.min, "max": option.max,
            "choices": list(option.choices) if option.choices is not None else None}
