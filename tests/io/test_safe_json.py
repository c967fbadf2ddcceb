"""JSON from strangers: nesting is measured before parsing, so 100,000 levels are an error, not a RecursionError."""

from __future__ import annotations

import pytest

from facelab.io.safe_json import loads_bounded, nesting_depth


def test_depth_counts_arrays_and_objects_but_not_brackets_inside_strings():
    assert nesting_depth(b'{"a": [[1, "]]]["], {"b": {}}]}') == 4
    assert nesting_depth(b'["\\"[[[", "\\\\"]') == 1  # escaped quotes and backslashes do not end a string early
    assert nesting_depth(b"") == nesting_depth(b"12") == 0


def test_too_deep_is_a_value_error_and_normal_json_parses():
    with pytest.raises(ValueError, match="nested 100000 levels deep"):
        loads_bounded("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not UTF-8"):
        loads_bounded(b'{"a": "\xff"}')
    assert loads_bounded(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert loads_bounded("[[[1]]]", max_depth=3) == [[[1]]]
