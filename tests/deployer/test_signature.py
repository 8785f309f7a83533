"""Signature records: kinds, defaults (JSON or repr), annotations as text, from objects and from source."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from deployer.signature import signature_from_source, signature_of

SOURCE = '''
def f(a, b: int, /, c: list[int] = (1, 2), *args: float, d: dict | None = None, e={1, 2}, **kw) -> str:
    """Doc."""
'''


def _f(a, b: int, /, c: list[int] = (1, 2), *args: float, d: dict | None = None, e={1, 2}, **kw) -> str:  # type: ignore[assignment] # noqa: B006
    return ""


def params(sig: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    assert sig is not None
    return [(p["name"], p["kind"], p["has_default"], p["default"], p["default_repr"], p["annotation"])
            for p in sig["parameters"]]


def test_signature_of_a_function() -> None:
    sig = signature_of(_f)
    assert params(sig) == [
        ("a", "POSITIONAL_ONLY", False, None, None, None),
        ("b", "POSITIONAL_ONLY", False, None, None, "int"),
        ("c", "POSITIONAL_OR_KEYWORD", True, [1, 2], None, "list[int]"),
        ("args", "VAR_POSITIONAL", False, None, None, "float"),
        ("d", "KEYWORD_ONLY", True, None, None, "dict | None"),
        ("e", "KEYWORD_ONLY", True, None, "{1, 2}", None),
        ("kw", "VAR_KEYWORD", False, None, None, None),
    ]
    assert sig["return"] == "str"


def test_signature_from_source_matches_without_running_it() -> None:
    by_source = params(signature_from_source(SOURCE, "f"))
    by_object = params(signature_of(_f))
    assert by_source == by_object
    assert signature_from_source(SOURCE, "f")["return"] == "str"  # type: ignore[index]


def test_evaluated_annotations_and_strings_are_text() -> None:
    # This module uses `from __future__ import annotations`; exec gives evaluated annotations.
    ns: dict[str, Any] = {"typing": typing}
    code = "def g(x: typing.Optional[int], y: 'Point', z: list[int]) -> float: pass"
    exec(compile(code, "<test>", "exec", dont_inherit=True), ns)
    sig = signature_of(ns["g"])
    assert [p["annotation"] for p in sig["parameters"]] == ["Optional[int]", "Point", "list[int]"]
    assert sig["return"] == "float"


@pytest.mark.parametrize(("default", "as_json", "as_repr"), [
    (None, None, None), (3, 3, None), (2.5, 2.5, None), ("x", "x", None), ([1, {"a": 2}], [1, {"a": 2}], None),
    (float("nan"), None, "nan"), (float("inf"), None, "inf"), (object, None, "<class 'object'>"),
    ({1: "a"}, None, "{1: 'a'}"),
])
def test_defaults_are_json_or_described(default: Any, as_json: Any, as_repr: str | None) -> None:
    def h(x=default):  # noqa: ANN001
        return x

    [p] = signature_of(h)["parameters"]
    assert p["has_default"] and p["default"] == as_json and p["default_repr"] == as_repr


def test_source_defaults_that_are_expressions_keep_their_text() -> None:
    sig = signature_from_source("import math\ndef f(x=math.pi, y=-1):\n    pass\n", "f")
    assert params(sig)[0][3:5] == (None, "math.pi")
    assert params(sig)[1][3:5] == (-1, None)


def test_source_without_the_function_or_unparsable() -> None:
    assert signature_from_source("def other(): pass\n", "f") is None
    assert signature_from_source("def f(:\n", "f") is None


def test_callables_without_a_signature_have_an_empty_one() -> None:
    assert signature_of(dict) == {"parameters": [], "return": None}
