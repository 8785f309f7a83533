"""The gateway core: body forms, X-Timeout, the process view (pure), and the submitted spec's wire
form for functions read from a real server's catalog."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.service import EXEC_GRACE, Gateway, output_value, parse_timeout, process_view, split_body
from gateway.signature import FunctionInfo
from sdk import FuncSpec, Process, ProcessState, jsonx
from sdk.cfs import REVISION_ENV
from tests.harness.server import DEV_COLONY

from . import functions
from .helpers import bundle_for


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


# (args, kwargs) as bind gives them: JSON values (integers past 64 bits from a body read by json,
# which also reads 1e999 as Infinity), and two a body cannot give, to pin how they are written.
ARGUMENTS: list[tuple[list[Any], dict[str, Any]]] = [
    ([], {}),
    ([], {"celsius": 21.0}),
    ([1, "two", {"three": [3, None, True]}], {}),
    ([2**70, -(2**64) - 1, 1.5, "café \u2603"], {"nested": {"a": [{"b": []}]}, "flag": False, "none": None}),
    ([float("inf"), float("nan")], {"t": (1, 2), "s": b"x"}),
]


def _assert_wire_is_the_models(gw: Gateway, info: FunctionInfo, args: list[Any], kwargs: dict[str, Any]) -> None:
    fast = gw.wire_spec(info, args, kwargs)
    model = gw.spec(info, args, kwargs).to_wire()
    assert repr(fast) == repr(model)  # the same keys in the same order, the same values of the same types
    assert jsonx.dumps(fast) == jsonx.dumps(model)


def _containers(value: Any) -> set[int]:
    if isinstance(value, dict):
        return {id(value)}.union(*(_containers(v) for v in value.values()))
    if isinstance(value, list):
        return {id(value)}.union(*(_containers(v) for v in value))
    return set()


@pytest.mark.parametrize("ttl", [2.0, 0.0])  # with a revision hint; without (the entry is never trusted)
async def test_the_wire_spec_is_what_the_model_gives(make_app: Any, deployed: Any, ttl: float) -> None:
    deployed.upload_bytes(DEV_COLONY, "/faas", "plain", b"def plain(x):\n    return x\n")
    deployed.upload_bytes(DEV_COLONY, "/faas", "unlimited",
                          bundle_for(functions.echo, name="unlimited", limits={"timeout": None, "retries": None}))
    app = make_app(cache_ttl=ttl)
    async with app.router.lifespan_context(app):
        gw: Gateway = app.state.gateway
        for name in ("convert", "echo", "plain", "unlimited"):
            info = await gw.catalog.get(name)
            for args, kwargs in ARGUMENTS:
                _assert_wire_is_the_models(gw, info, args, kwargs)
            one, two = gw.wire_spec(info, [1], {"a": [2]}), gw.wire_spec(info, [1], {"a": [2]})
            assert (REVISION_ENV in one["env"]) == (ttl > 0), name
            assert not _containers(one) & _containers(two)  # nothing shared between calls


async def test_a_redeploy_is_in_the_next_wire_spec(app: Any, deployed: Any) -> None:
    gw: Gateway = app.state.gateway
    info = await gw.catalog.get("convert")
    first = gw.wire_spec(info, [], {"celsius": 1})
    assert (first["maxexectime"], first["maxretries"]) == (30 + EXEC_GRACE, 0)
    assert await gw.catalog.get("convert", refresh=True) is info  # re-checked, no new revision
    assert gw.wire_spec(info, [], {"celsius": 1}) == first
    deployed.upload_bytes(DEV_COLONY, "/faas", "convert",
                          bundle_for(functions.convert, limits={"timeout": 7, "retries": 2}))
    info = await gw.catalog.get("convert", refresh=True)
    second = gw.wire_spec(info, [], {"celsius": 1})
    assert (second["maxexectime"], second["maxretries"]) == (7 + EXEC_GRACE, 2)
    assert second["env"][REVISION_ENV] != first["env"][REVISION_ENV]
    for args, kwargs in ARGUMENTS:
        _assert_wire_is_the_models(gw, info, args, kwargs)
    deployed.upload_bytes(DEV_COLONY, "/faas", "convert", bundle_for(functions.convert, limits={"timeout": None}))
    info = await gw.catalog.get("convert", refresh=True)
    assert gw.wire_spec(info, [], {})["maxexectime"] == gw.settings.default_exec_timeout
    _assert_wire_is_the_models(gw, info, [], {"celsius": 1})
