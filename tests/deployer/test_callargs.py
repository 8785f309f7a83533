"""`faas invoke` argument words: JSON or text, or converted by the recorded annotations; positional
or KEY=VALUE; checked against signatures."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.callargs import (
    CallWords,
    check_arguments,
    convert_call_words,
    convert_value,
    parse_call_args,
    parse_value,
    split_call_words,
)
from deployer.errors import DeployerError
from deployer.signature import signature_from_source, signature_of


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


# -- conversion by the recorded annotations ----------------------------------------------------


@pytest.mark.parametrize(("word", "annotation", "value"), [
    ("007", "str", "007"), ("21", "str", "21"), ('"x"', "str", '"x"'), ("true", "str", "true"), ("", "str", ""),
    ("21", "float", 21.0), ("-2.5", "float", -2.5), ("1e3", "builtins.float", 1000.0),
    ("007", "int", 7), ("-3", "int", -3),
    ("yes", "bool", True), ("0", "bool", False), ("False", "bool", False),
    ("[1, 2]", "list[int]", [1, 2]), ("[]", "List[str]", []), ("[1]", "tuple[int, ...]", [1]),
    ('{"a": 1}', "dict[str, int]", {"a": 1}), ("{}", "typing.Mapping", {}),
    ("null", "Optional[int]", None), ("", "int | None", None), ("None", "str | None", None),
    ("5", "Optional[int]", 5), ("007", "str | None", "007"), ("21", "'float'", 21.0),
    # Annotations that say nothing simple: the words keep their JSON-or-text meaning.
    ("007", "Any", "007"), ("21", "Point", 21), ("[1]", "int | str", [1]), ("x", "Point", "x"),
])
def test_words_are_converted_by_their_parameters_annotation(word: str, annotation: str, value: Any) -> None:
    got = convert_value("p", word, annotation)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("word", "annotation", "why"), [
    ("abc", "float", "cannot convert 'abc' to float"), ("2.5", "int", "cannot convert '2.5' to int"),
    ("maybe", "bool", "cannot convert 'maybe' to bool"), ('{"a": 1}', "list[int]", "to list[int]"),
    ("[1]", "dict", "cannot convert '[1]' to dict"), ("nan", "float", "'nan' is not a finite number"),
    ("inf", "Optional[float]", "'inf' is not a finite number"), ("", "int", "cannot convert '' to int"),
])
def test_words_that_do_not_fit_their_annotation_are_named(word: str, annotation: str, why: str) -> None:
    with pytest.raises(DeployerError, match=rf"^parameter 'p': .*{re.escape(why)}"):
        convert_value("p", word, annotation)


def _greet(name: str, times: float, /, shout: bool = False, *extra: int, sep: str = " ", tags: list[str] | None = None,
           **more: float) -> str:
    return ""


def test_each_word_takes_the_annotation_of_the_parameter_it_fills() -> None:
    sig = signature_of(_greet)  # the record `faas deploy` writes, from a real function
    args, kwargs = parse_call_args(["007", "21", "yes", "1", "2", "sep=0", 'tags=["a"]', "ratio=3"], sig)
    assert args == ["007", 21.0, True, 1, 2] and [type(a) for a in args] == [str, float, bool, int, int]
    assert kwargs == {"sep": "0", "tags": ["a"], "ratio": 3.0} and type(kwargs["ratio"]) is float
    # As in Python, a keyword naming a positional-only parameter goes to **more.
    _, by_name = parse_call_args(["name=007"], sig)
    assert by_name == {"name": 7.0} and type(by_name["name"]) is float
    plain = signature_from_source("def f(a: int, /):\n    pass\n", "f")
    assert parse_call_args(["a=007"], plain) == ([], {"a": "007"})  # fits no parameter: check_arguments says so


def test_words_without_annotations_keep_their_json_or_text_meaning() -> None:
    sig = signature_from_source("def f(a, b=1, *rest, **kw):\n    pass\n", "f")
    assert parse_call_args(["007", "[1]", "x", "b=true", "c=null"], sig) == (["007", [1], "x"], {"b": True, "c": None})
    assert parse_call_args(["21", "x=007"], None) == ([21], {"x": "007"})
    for odd in ({"parameters": [{"name": "x", "annotation": 7}, "y"]}, {"parameters": "x"}, ["x"]):
        assert parse_call_args(["21", "x=007"], odd) == ([21], {"x": "007"})  # type: ignore[arg-type]


def test_every_word_that_cannot_be_converted_is_named_at_once() -> None:
    sig = signature_of(_greet)
    with pytest.raises(DeployerError, match=r"^parameter 'times': cannot convert 'warm' to float; "
                                            r"parameter 'ratio': cannot convert 'x' to float$"):
        convert_call_words(CallWords(("Ada", "warm"), {"ratio": "x"}), sig)


def test_words_are_split_before_the_signature_is_known() -> None:
    assert split_call_words(["21", "a=b=c", "x="]) == CallWords(("21",), {"a": "b=c", "x": ""})
    with pytest.raises(DeployerError, match="positional argument '3' follows keyword arguments"):
        split_call_words(["a=1", "3"])


@given(st.text())
def test_any_word_for_a_str_parameter_arrives_as_it_is(word: str) -> None:
    sig = signature_from_source("def f(s: str):\n    pass\n", "f")
    assert parse_call_args([f"s={word}"], sig) == ([], {"s": word})
    if not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word):  # else it is a keyword argument (`A=…`)
        assert parse_call_args([word], sig) == ([word], {})
