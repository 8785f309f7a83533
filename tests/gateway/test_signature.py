"""Bundle parsing, query conversion with annotations, and argument binding (pure)."""

from __future__ import annotations

import json

import pytest

from gateway.signature import FunctionInfo, Param, ParameterError, bind, convert_query, parse_function


def bundle(params: list[dict], **extra: object) -> bytes:
    doc = {
        "format": "colonyfaas-bundle/1", "name": "f", "version": "1", "entrypoint": "f",
        "serializer": "source", "code": "def f(): pass", "python": "3.11", "cloudpickle": None,
        "signature": {"parameters": params, "return": "float"}, "doc": "Do f.\n\nMore.",
        "limits": {"timeout": 12, "retries": 2, "memory_mb": 256, "network": False},
        "requirements": [], "deployed_at": "2026-01-01T00:00:00Z",
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def p(name: str, kind: str = "POSITIONAL_OR_KEYWORD", annotation: str | None = None, default: object = ...) -> dict:
    d = {"name": name, "kind": kind, "has_default": default is not ..., "default": None if default is ... else default,
         "annotation": annotation}
    return d


CONVERT = parse_function("convert", bundle([p("celsius", annotation="float")]))


def test_parse_bundle_reads_signature_limits_and_doc() -> None:
    info = parse_function("convert", bundle([p("celsius", annotation="float"), p("digits", annotation="int", default=1)]))
    assert info.params is not None and [x.name for x in info.params] == ["celsius", "digits"]
    assert info.signature_text == "convert(celsius: float, digits: int = 1) -> float"
    assert (info.timeout, info.retries, info.doc, info.version) == (12, 2, "Do f.\n\nMore.", "1")
    assert info.describe()["parameters"][1] == {"name": "digits", "kind": "POSITIONAL_OR_KEYWORD",
                                                 "required": False, "annotation": "int", "default": 1}


def test_bare_source_file_has_unknown_signature() -> None:
    info = parse_function("hello", b"def hello(name):\n    return 'hi ' + name\n")
    assert info.params is None and info.signature_text is None
    assert bind(info, [1], {"anything": 2}) == ([1], {"anything": 2})


def test_fractional_timeout_rounds_up() -> None:
    info = parse_function("f", bundle([], limits={"timeout": 0.5}))
    assert info.timeout == 1


@pytest.mark.parametrize(("annotation", "raw", "expected"), [
    ("float", "21", 21.0),
    ("int", "21", 21),
    ("str", "21", "21"),
    ("bool", "true", True),
    ("bool", "0", False),
    ("list[int]", "[1, 2]", [1, 2]),
    ("dict", '{"a": 1}', {"a": 1}),
    ("Optional[int]", "null", None),
    ("int | None", "", None),
    ("int | None", "5", 5),
    ("typing.Any", "[1]", [1]),
    ("MyClass", "not json", "not json"),
    (None, "21", 21),
    (None, "2.5", 2.5),
    (None, "hello", "hello"),
    (None, '{"x": [1]}', {"x": [1]}),
])
def test_query_values_follow_annotations_then_json_then_text(annotation: str | None, raw: str,
                                                            expected: object) -> None:
    info = FunctionInfo("f", (Param("x", annotation=annotation),))
    assert convert_query(info, [("x", raw)]) == {"x": expected}
    assert type(convert_query(info, [("x", raw)])["x"]) is type(expected)


def test_unconvertible_value_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'celsius': cannot convert 'warm' to float"):
        convert_query(CONVERT, [("celsius", "warm")])


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_a_non_finite_number_is_refused_naming_the_parameter(raw: str) -> None:
    # JSON has no NaN or Infinity: the call's wire form would carry null, and convert() get None.
    with pytest.raises(ParameterError, match=rf"parameter 'celsius': '{raw}' is not a finite number"):
        convert_query(CONVERT, [("celsius", raw)])


def test_nan_and_infinity_are_not_json_values_of_unannotated_parameters() -> None:
    assert convert_query(None, [("x", "NaN"), ("y", "Infinity")]) == {"x": "NaN", "y": "Infinity"}  # text
    with pytest.raises(ParameterError, match="cannot convert"):
        convert_query(FunctionInfo("f", (Param("xs", annotation="list[float]"),)), [("xs", "[1, NaN]")])


def test_repeated_query_name_becomes_a_list() -> None:
    info = FunctionInfo("f", (Param("xs", annotation="list[int]"),))
    assert convert_query(info, [("xs", "1"), ("xs", "2")]) == {"xs": [1, 2]}
    info = FunctionInfo("f", (Param("xs", annotation="typing.Optional[typing.Sequence[str]]"),))
    assert convert_query(info, [("xs", "1"), ("xs", "b")]) == {"xs": ["1", "b"]}
    # Without a signature (a bare source file) values pass through unchecked.
    assert convert_query(None, [("a", "x"), ("a", "2")]) == {"a": ["x", 2]}
    assert convert_query(FunctionInfo("f", None), [("a", "x"), ("a", "2")]) == {"a": ["x", 2]}


@pytest.mark.parametrize("annotation", ["int", "str", "float | None", "dict", "typing.Any", None])
def test_a_repeated_query_name_of_any_other_parameter_is_an_error_naming_it(annotation: str | None) -> None:
    info = FunctionInfo("add", (Param("a", annotation=annotation), Param("b", annotation="int")))
    with pytest.raises(ParameterError, match=r"parameter 'a' is given 2 times in the query string") as e:
        convert_query(info, [("a", "1"), ("b", "3"), ("a", "2")])
    assert "'b'" not in str(e.value)
    # Unannotated, a list can still be given: once, as JSON.
    assert ("a=[1,2]" in str(e.value)) == (annotation is None)


def test_every_repeated_name_is_named() -> None:
    info = parse_function("f", bundle([p("a", annotation="int"), p("b", annotation="int")]))
    with pytest.raises(ParameterError) as e:
        convert_query(info, [("a", "1"), ("a", "2"), ("b", "3"), ("b", "4"), ("b", "5")])
    assert "'a' is given 2 times" in str(e.value) and "'b' is given 3 times" in str(e.value)


@pytest.mark.parametrize("annotation", [None, "list[int]", "dict", "typing.Any"])
def test_a_query_value_nesting_too_deep_is_an_error_naming_it(annotation: str | None) -> None:
    info = FunctionInfo("f", (Param("x", annotation=annotation),))
    deep = "[" * 129 + "]" * 129 if annotation != "dict" else '{"a":' * 129 + "1" + "}" * 129
    with pytest.raises(ParameterError, match=r"parameter 'x': value nests deeper than 128 levels"):
        convert_query(info, [("x", deep)])
    # Big integers are read by the json module, which recursed past its limit here (RecursionError).
    with pytest.raises(ParameterError, match="nests deeper"):
        convert_query(info, [("x", "[" * 5000 + str(2**70) + "]" * 5000)])
    if annotation != "dict":
        limit = "[" * 128 + "]" * 128
        assert convert_query(info, [("x", limit)]) == {"x": json.loads(limit)}
    # Text parameters take brackets as text.
    assert convert_query(FunctionInfo("f", (Param("x", annotation="str"),)), [("x", deep)]) == {"x": deep}


def test_missing_and_unknown_parameters_are_all_named() -> None:
    info = parse_function("f", bundle([p("a"), p("b"), p("c", default=3)]))
    with pytest.raises(ParameterError) as e:
        bind(info, [], {"zz": 1, "yy": 2})
    text = str(e.value)
    assert "unknown parameters: yy, zz" in text
    assert "missing parameters: a, b" in text
    assert "signature: f(a, b, c = 3)" in text


def test_bind_accepts_positional_and_keyword() -> None:
    info = parse_function("f", bundle([p("a"), p("b", default=2)]))
    assert bind(info, [1], {"b": 5}) == ([1], {"b": 5})
    with pytest.raises(ParameterError, match="too many positional arguments"):
        bind(info, [1, 2, 3], {})
    with pytest.raises(ParameterError, match="parameter given twice: a"):
        bind(info, [1], {"a": 1})


def test_var_keyword_accepts_anything_and_var_positional_many() -> None:
    info = parse_function("f", bundle([p("a"), p("rest", "VAR_POSITIONAL"), p("kw", "VAR_KEYWORD")]))
    assert bind(info, [1, 2, 3], {"x": 1}) == ([1, 2, 3], {"x": 1})
    assert info.signature_text == "f(a, *rest, **kw) -> float"


def test_positional_only_given_by_name_moves_to_args() -> None:
    info = parse_function("f", bundle([p("a", "POSITIONAL_ONLY"), p("b", "KEYWORD_ONLY")]))
    assert bind(info, [], {"a": 1, "b": 2}) == ([1], {"b": 2})
    assert info.signature_text == "f(a, /, *, b) -> float"
    with pytest.raises(ParameterError, match="missing parameter: b"):
        bind(info, [1], {})
