"""JSON from files a stranger may have written: nesting depth checked before parsing.

``json.loads`` recurses once per nesting level, so a file of 100,000 ``[`` ends in a RecursionError (a
traceback, not an error a user can read). ``loads_bounded`` counts the depth first, with numpy, outside strings.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_DEPTH = 32  # facelab's own files nest at most 5 deep (a face's mask polygons)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = np.zeros(256, np.int32)  # +1 for each byte that opens a level, -1 for each that closes one
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1


def nesting_depth(text: bytes) -> int:
    """How deep JSON ``text`` nests arrays and objects; brackets inside strings do not count."""
    bare = np.frombuffer(_STRING.sub(b"", text), np.uint8)
    return int(np.cumsum(_STEP[bare]).max(initial=0))


def loads_bounded(text: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``; ValueError (as for any malformed JSON) when it nests deeper than ``max_depth``
    or is not UTF-8."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    depth = nesting_depth(data)
    if depth > max_depth:
        raise ValueError(f"nested {depth} levels deep, more than {max_depth}")
    try:
        return json.loads(data.decode())
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err.reason})") from None
