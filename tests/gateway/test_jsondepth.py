"""The JSON nesting check the gateway runs before parsing a body or a query value (pure)."""

from __future__ import annotations

import json

import pytest

from gateway.jsondepth import MAX_DEPTH, nests_deeper


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("text", ["", "1", '"text"', "[]", "{}", '{"a": [1, {"b": 2}]}', nested(MAX_DEPTH)])
def test_json_at_most_the_limit_passes(text: str) -> None:
    assert not nests_deeper(text)
    assert not nests_deeper(text.encode())


def test_one_level_past_the_limit_is_refused_for_arrays_objects_and_both() -> None:
    assert nests_deeper(nested(MAX_DEPTH + 1))
    assert nests_deeper(nested(100_000).encode())
    objects = '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)
    assert nests_deeper(objects)
    mixed = '[{"a":' * 65 + "[]" + "}]" * 65  # 131 levels
    assert json.loads(mixed) and nests_deeper(mixed)


def test_many_brackets_side_by_side_are_not_depth() -> None:
    wide = json.dumps([[i, [i]] for i in range(10_000)])
    assert not nests_deeper(wide)
    assert not nests_deeper(json.dumps([nested(MAX_DEPTH - 1) for _ in range(3)]).replace('"', ""))


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 1000, "b": ["{" * 500 + '\\"' + "[" * 500]})
    assert not nests_deeper(text)
    # A string's escaped quote does not end it: the brackets after it are still text.
    assert not nests_deeper(json.dumps(['x\\"' + "[" * 1000]))
    # ... and brackets between two strings do count.
    assert nests_deeper('["a", ' + nested(MAX_DEPTH) + ', "b"]')


def test_the_limit_can_be_given() -> None:
    assert nests_deeper("[[[]]]", 2) and not nests_deeper("[[[]]]", 3)
