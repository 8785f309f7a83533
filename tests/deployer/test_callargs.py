"""`faas invoke` argument words: JSON or text, positional or KEY=VALUE, checked against signatures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.callargs import check_arguments, parse_call_args, parse_value
from deployer.errors import DeployerError


@pytest.mark.parametrize(("word", "value"), [
    ("21", 21), ("21.5", 21.5), ("-3", -3), ("true", True), ("null", None), ('"21"', "21"),
    ("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}), ("hello", "hello"), ("21c", "21c"), ("", ""),
    ("a b", "a b"), ("NaN", "NaN"),
])
def test_values_are_json_when_valid_else_text(word: str, value: Any) -> None:
    got = parse_value(word)
    if word == "NaN":  # Python's json accepts NaN; it is a number then
        assert got != got
        return
    assert got == value and type(got) is type(value)


def test_positional_then_keyword() -> None:
    assert parse_call_args(["21", "hello", "unit=C", 'opts={"x": [1]}', "flag=true", "name=Ada Lovelace"]) == (
        [21, "hello"], {"unit": "C", "opts": {"x": [1]}, "flag": True, "name": "Ada Lovelace"})


@pytest.mark.parametrize(("word", "positional"), [
    ("=x", "=x"), ("1=2", "1=2"), ('{"a":"b=c"}', {"a": "b=c"}), ("a-b=c", "a-b=c"),
])
def test_words_that_are_not_identifier_equals_are_positional(word: str, positional: Any) -> None:
    assert parse_call_args([word]) == ([positional], {})


def test_keyword_value_may_contain_equals() -> None:
    assert parse_call_args(["q=a=b"]) == ([], {"q": "a=b"})


def test_positional_after_keyword_is_an_error() -> None:
    with pytest.raises(DeployerError, match="positional argument '3' follows keyword arguments"):
        parse_call_args(["a=1", "3"])


def test_repeated_keyword_is_an_error() -> None:
    with pytest.raises(DeployerError, match="keyword argument 'a' given twice"):
        parse_call_args(["a=1", "a=2"])


SIG = {"parameters": [
    {"name": "celsius", "kind": "POSITIONAL_OR_KEYWORD", "has_default": False, "default": None, "annotation": "float"},
    {"name": "digits", "kind": "KEYWORD_ONLY", "has_default": True, "default": 2, "annotation": None},
], "return": "float"}


def test_arguments_that_bind_pass() -> None:
    check_arguments("convert", SIG, [21], {})
    check_arguments("convert", SIG, [], {"celsius": 21, "digits": 1})
    check_arguments("convert", None, [1, 2, 3], {"x": 1})


@pytest.mark.parametrize(("args", "kwargs", "why"), [
    ([], {}, "missing a required argument: 'celsius'"),
    ([1, 2], {}, "too many positional arguments"),
    ([1], {"unit": "C"}, "got an unexpected keyword argument 'unit'"),
])
def test_arguments_that_do_not_bind_are_named(args: list, kwargs: dict, why: str) -> None:
    with pytest.raises(DeployerError, match=rf"convert\(celsius, \*, digits=2\): {why}"):
        check_arguments("convert", SIG, args, kwargs)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                    max_leaves=8)


@given(JSON)
def test_any_json_value_round_trips_as_a_word(value: Any) -> None:
    assert parse_value(json.dumps(value)) == value


@given(st.text().filter(lambda t: not _is_json(t)))
def test_any_text_that_is_not_json_stays_text(text: str) -> None:
    assert parse_value(text) == text


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), JSON)
def test_keyword_words_carry_any_json_value(key: str, value: Any) -> None:
    assert parse_call_args([f"{key}={json.dumps(value)}"]) == ([], {key: value})


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
