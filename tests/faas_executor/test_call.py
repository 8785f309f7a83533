"""Decoding a FuncSpec into a call, and the call's time limit."""

from __future__ import annotations

import pytest

from faas_executor.call import Call, CallError, call_from_spec, call_timeout


def test_plain_call_keeps_args_and_kwargs() -> None:
    assert call_from_spec("convert", [21], {"unit": "C"}) == Call("convert", [21], {"unit": "C"})
    assert call_from_spec("convert", None, None) == Call("convert", [], {})


def test_tutorial_form_converts_arg_to_float() -> None:
    c = call_from_spec("execute", [], {"function": "convert", "arg": "21"})
    assert c == Call("convert", [21.0], {}, tutorial=True)
    assert isinstance(c.args[0], float)


def test_a_function_named_execute_with_other_arguments_is_a_plain_call() -> None:
    assert call_from_spec("execute", [1], {}) == Call("execute", [1], {})
    assert not call_from_spec("execute", [], {"function": "f", "arg": 1, "x": 2}).tutorial


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"function": "convert", "arg": "warm"}, "is not a number"),
    ({"function": "", "arg": "1"}, "must be a function name"),
])
def test_bad_tutorial_calls_say_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CallError, match=message):
        call_from_spec("execute", [], kwargs)


def test_empty_funcname_is_rejected() -> None:
    with pytest.raises(CallError, match="empty funcname"):
        call_from_spec("", [], {})


def test_timeout_prefers_the_function_then_maxexectime_then_default() -> None:
    assert call_timeout(2.0, 30, 600) == 2.0
    assert call_timeout(None, 30, 600) == 30.0
    assert call_timeout(None, -1, 600) == 600.0
    assert call_timeout(None, 0, 600) == 600.0


def test_workflow_inputs_become_the_arguments_of_a_spec_without_args() -> None:
    assert call_from_spec("double", [], None, inputs=[21]) == Call("double", [21], {})
    assert call_from_spec("double", [1], None, inputs=[21]) == Call("double", [1], {})
