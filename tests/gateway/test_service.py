"""Pure parts of the gateway core: body forms, X-Timeout, the process view, the spec."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.errors import BadRequest
from gateway.service import output_value, parse_timeout, process_view, split_body
from sdk import FuncSpec, Process, ProcessState


def test_body_forms() -> None:
    assert split_body(None) == ([], {})
    assert split_body({"celsius": 21}) == ([], {"celsius": 21})
    assert split_body([1, 2]) == ([1, 2], {})
    assert split_body({"args": [1], "kwargs": {"b": 2}}) == ([1], {"b": 2})
    assert split_body({"args": [1]}) == ([1], {})
    # A function with a parameter named `args` gets it as a keyword argument.
    assert split_body({"args": [1]}, ["args"]) == ([], {"args": [1]})
    # Not the envelope shape: plain keyword arguments.
    assert split_body({"args": 5}) == ([], {"args": 5})
    with pytest.raises(BadRequest, match="must be a JSON object"):
        split_body("text")


@pytest.mark.parametrize(("header", "expected"), [(None, 30.0), ("", 30.0), ("2.5", 2.5), ("10s", 10.0)])
def test_timeout_header(header: str | None, expected: float) -> None:
    assert parse_timeout(header, 30.0, 900.0) == expected


@pytest.mark.parametrize("header", ["soon", "0", "-1", "901", "nan"])
def test_bad_timeout_header(header: str) -> None:
    with pytest.raises(BadRequest, match="X-Timeout"):
        parse_timeout(header, 30.0, 900.0)


def test_process_view_shapes() -> None:
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ok = Process(processid="p" * 64, state=ProcessState.SUCCESS, spec=FuncSpec(funcname="convert"),
                 submissiontime=t, starttime=t, endtime=t, output=[69.8])
    assert process_view(ok) == {"processid": "p" * 64, "function": "convert", "state": "successful", "result": 69.8,
                                "submitted": "2026-01-02T03:04:05Z", "started": "2026-01-02T03:04:05Z",
                                "ended": "2026-01-02T03:04:05Z", "retries": 0}
    failed = Process(processid="q" * 64, state=ProcessState.FAILED, errors=["Traceback ...", "ValueError: x"])
    view = process_view(failed)
    assert view["state"] == "failed" and view["error"] == "Traceback ...\nValueError: x" and "result" not in view
    waiting = process_view(Process(processid="r" * 64))
    assert waiting["state"] == "waiting" and waiting["started"] is None and "result" not in waiting


def test_output_value() -> None:
    assert output_value(Process(output=[None])) is None
    assert output_value(Process(output=[[1, 2]])) == [1, 2]
    assert output_value(Process(output=[])) is None
    assert output_value(Process(output=[1, 2])) == [1, 2]
