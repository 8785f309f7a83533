"""Scheduling and state transitions on a real store: selection order, targeting, retries, workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from colonies_server import lifecycle
from colonies_server.procs import FAILED, RUNNING, SUCCESS, WAITING, new_process, normalize_spec
from colonies_server.store import Store, open_store
from colonies_server.workflows import build_workflow

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC


def _exec(name: str = "e1", etype: str = "t") -> dict[str, Any]:
    return {"executorid": name * 32, "executorname": name, "executortype": etype, "colonyname": "dev"}


def _proc(now: int = T0, **spec: Any) -> dict[str, Any]:
    cond = {"colonyname": "dev", "executortype": spec.pop("etype", "t")}
    if "names" in spec:
        cond["executornames"] = spec.pop("names")
    return new_process(normalize_spec({"conditions": cond, **spec}), "i" * 64, "me", now)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = open_store(db_url)
    await s.open()
    yield s
    await s.close()


async def _insert(store: Store, *procs: dict[str, Any]) -> None:
    def op(tx: Any) -> None:
        for p in procs:
            tx.insert_process(p)
    await store.write(op)


async def _assign(store: Store, ex: dict[str, Any], now: int = T0) -> dict[str, Any] | None:
    return await store.write(lambda tx: lifecycle.assign_next(tx, "dev", ex, now))


async def test_priority_then_fifo(store: Store) -> None:
    low, high, low2 = _proc(T0, priority=0), _proc(T0 + 1, priority=10), _proc(T0 + 2, priority=0)
    await _insert(store, low, high, low2)
    order = [(await _assign(store, _exec()) or {}).get("processid") for _ in range(4)]
    assert order == [high["processid"], low["processid"], low2["processid"], None]


async def test_type_and_name_targeting(store: Store) -> None:
    other_type, for_b = _proc(etype="other"), _proc(names=["b"])
    await _insert(store, other_type, for_b)
    assert await _assign(store, _exec("a")) is None  # neither the other type nor B's process
    got = await _assign(store, _exec("b"))
    assert got is not None and got["processid"] == for_b["processid"]
    assert (got["state"], got["isassigned"], got["assignedexecutorid"]) == (RUNNING, True, "b" * 32)


async def test_exec_deadline_requeue_then_fail(store: Store) -> None:
    p = _proc(maxexectime=2, maxretries=1)
    await _insert(store, p)
    assert await _assign(store, _exec()) is not None

    async def expire(now: int) -> list[dict[str, Any]]:
        def op(tx: Any) -> list[dict[str, Any]]:
            out = tx.exec_expired(now, 10)
            for q in out:
                lifecycle.requeue(tx, q, now, count_retry=True, error="Maximum execution time limit exceeded")
            return out
        return await store.write(op)
    assert await expire(T0 + 1 * SEC) == []
    assert len(await expire(T0 + 3 * SEC)) == 1
    q = await store.read(lambda tx: tx.get_process(p["processid"]))
    assert (q["state"], q["retries"], q["assignedexecutorid"], q["isassigned"]) == (WAITING, 1, "", False)
    assert await _assign(store, _exec(), T0 + 4 * SEC) is not None
    await expire(T0 + 7 * SEC)
    q = await store.read(lambda tx: tx.get_process(p["processid"]))
    assert (q["state"], q["errors"]) == (FAILED, ["Maximum execution time limit exceeded"])


async def test_maxexectime_zero_expires_at_once(store: Store) -> None:
    await _insert(store, _proc(maxexectime=0))
    await _assign(store, _exec())
    assert len(await store.read(lambda tx: tx.exec_expired(T0, 10))) == 1  # quirk 8.9


async def test_workflow_input_passing_and_release(store: Store) -> None:
    specs = [normalize_spec({"nodename": n, "conditions": {"executortype": "t", "dependencies": d}}, workflow=True)
             for n, d in (("a", []), ("b", ["a"]))]
    graph, procs = build_workflow("dev", specs, "i" * 64, "me", T0)
    await store.write(lambda tx: [tx.put_graph(graph), *(tx.insert_process(p) for p in procs)])
    a = await _assign(store, _exec())
    assert a is not None and a["processid"] == procs[0]["processid"]
    assert await _assign(store, _exec()) is None  # b waits for its parent
    await store.write(lambda tx: lifecycle.close(tx, tx.get_process(a["processid"]), ["x", 2], T0 + SEC))
    b = await _assign(store, _exec())
    assert b is not None and b["in"] == ["x", 2]
    await store.write(lambda tx: lifecycle.close(tx, tx.get_process(b["processid"]), [], T0 + 2 * SEC))
    g = await store.read(lambda tx: tx.get_graph(graph["processgraphid"]))
    assert g["state"] == SUCCESS and g["endtime"] != "0001-01-01T00:00:00Z"


async def test_executor_removal_requeue_keeps_retries(store: Store) -> None:
    p = _proc()
    await _insert(store, p)
    await _assign(store, _exec())

    def op(tx: Any) -> None:
        for q in tx.running_of_executor(_exec()["executorid"]):
            lifecycle.requeue(tx, q, T0, count_retry=False, error="")
    await store.write(op)
    q = await store.read(lambda tx: tx.get_process(p["processid"]))
    assert (q["state"], q["retries"], q["starttime"]) == (WAITING, 0, "0001-01-01T00:00:00Z")


async def test_function_statistics_add_up_over_closes_and_are_stored(db_url: str) -> None:
    ex = {**_exec(), "state": 1}
    fn = {"functionid": "f" * 64, "colonyname": "dev", "executorname": "e1", "funcname": "echo", "counter": 0,
          "minwaittime": 0.0, "maxwaittime": 0.0, "avgwaittime": 0.0,
          "minexectime": 0.0, "maxexectime": 0.0, "avgexectime": 0.0}
    store = open_store(db_url)
    await store.open()
    try:
        def setup(tx: Any) -> None:
            tx.put_executor(ex)
            tx.add_function(fn)
        await store.write(setup)
        for i, exec_s in enumerate((1, 3, 2)):  # each submitted at T0 + 10 s·i, waits 1 s, runs exec_s
            p = _proc(T0 + 10 * i * SEC, funcname="echo")
            await _insert(store, p)
            assert await _assign(store, ex, T0 + (10 * i + 1) * SEC) is not None
            await store.write(lambda tx, p=p, i=i, exec_s=exec_s: lifecycle.close(
                tx, tx.get_process(p["processid"]), [], T0 + (10 * i + 1 + exec_s) * SEC))
    finally:
        await store.close()

    store = open_store(db_url)  # what was stored, not what a cache in the old store held
    await store.open()
    try:
        (stats,) = await store.read(lambda tx: tx.find_functions("dev"))
    finally:
        await store.close()
    assert stats["counter"] == 3
    assert (stats["minwaittime"], stats["maxwaittime"], stats["avgwaittime"]) == (1.0, 1.0, 1.0)
    # upstream's "average": (old + new) / 2 at each close
    assert (stats["minexectime"], stats["maxexectime"], stats["avgexectime"]) == (1.0, 3.0, 2.0)


async def test_values_past_64_bits_are_stored_and_read_back_exactly(store: Store) -> None:
    """orjson alone reads such integers as floats and refuses to write them; a function's
    arguments and outputs may hold any JSON integer."""
    p = _proc(kwargs={"n": 2**70, "m": -(2**64) - 1})
    p["out"] = [2**80, 18446744073709551615, -(2**63)]
    await _insert(store, p)
    got = await store.read(lambda tx: tx.get_process(p["processid"]))
    assert got["spec"]["kwargs"] == {"n": 2**70, "m": -(2**64) - 1}
    assert got["out"] == [2**80, 18446744073709551615, -(2**63)]
    assert all(type(v) is int for v in got["out"])
