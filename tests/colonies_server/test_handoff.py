"""Assignment hand-off: a submission stored already assigned to an idle parked long-poll.

Driven at the handler level on a real store and signal hub (SQLite hands off; PostgreSQL, whose
operations run in other threads, takes the ordinary path, with the same results).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from colonies_server.config import Settings
from colonies_server.handlers.processes import _long_poll, submit_process
from colonies_server.procs import RUNNING, WAITING
from colonies_server.runtime import Runtime
from colonies_server.store import open_store

USER, EXEC_A, EXEC_B = "u" * 64, "a" * 64, "b" * 64


@pytest.fixture
async def rt(db_url: str) -> AsyncIterator[Runtime]:
    store = open_store(db_url)
    await store.open()
    runtime = Runtime(settings=Settings(db=db_url), store=store)
    store.on_commit = runtime.hub.publish

    def setup(tx: Any) -> None:
        tx.add_colony({"name": "dev", "colonyid": "c" * 64})
        tx.add_user({"colonyname": "dev", "name": "user", "userid": USER})
        for name, eid in (("a", EXEC_A), ("b", EXEC_B)):
            tx.put_executor({"colonyname": "dev", "executorname": name, "executorid": eid,
                             "executortype": "t", "state": 1})
    await store.write(setup)
    yield runtime
    await store.close()


def _executor(eid: str, name: str) -> dict[str, Any]:
    return {"colonyname": "dev", "executorname": name, "executorid": eid, "executortype": "t", "state": 1}


async def _parked(rt: Runtime, eid: str, name: str, timeout: float = 10.0) -> asyncio.Task[Any]:
    """A long-poll of the executor, once it found nothing and waits."""
    task = asyncio.create_task(_long_poll(rt, eid, "dev", _executor(eid, name), timeout))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if any(w.idle for ws in rt.hub._waiters.values() for w in ws):
            return task
    raise AssertionError("the long-poll did not park")


def _spec(**conditions: Any) -> dict[str, Any]:
    return {"spec": {"funcname": "f", "maxexectime": 30,
                     "conditions": {"colonyname": "dev", "executortype": "t", **conditions}}}


def _handing_off(rt: Runtime) -> bool:
    return rt.store.inline_ops


async def test_a_submission_goes_to_the_parked_executor_in_one_transaction(rt: Runtime) -> None:
    poll = await _parked(rt, EXEC_A, "a")
    ops = rt.store.ops  # type: ignore[attr-defined]
    submitted = await submit_process(rt, USER, _spec())
    got = await asyncio.wait_for(poll, 10)
    writes = rt.store.ops - ops  # type: ignore[attr-defined]
    # The submitter is answered with the process as submitted; the executor gets it assigned.
    assert submitted["state"] == WAITING and not submitted["isassigned"]
    assert got["processid"] == submitted["processid"]
    assert got["state"] == RUNNING and got["assignedexecutorid"] == EXEC_A
    stored = await rt.store.read(lambda tx: tx.get_process(submitted["processid"]))
    assert stored["state"] == RUNNING and stored["assignedexecutorid"] == EXEC_A
    assert stored["execdeadline"] == got["execdeadline"] != "0001-01-01T00:00:00Z"
    # One write (the submission) instead of two (the submission, then the woken long-poll's).
    assert writes == (1 if _handing_off(rt) else 2)


async def test_subscribers_see_the_process_waiting_then_running(rt: Runtime) -> None:
    seen: list[int] = []
    rt.hub.subscribe_all("t", WAITING, lambda p: seen.append(p["state"]))
    rt.hub.subscribe_all("t", RUNNING, lambda p: seen.append(p["state"]))
    poll = await _parked(rt, EXEC_A, "a")
    await submit_process(rt, USER, _spec())
    await asyncio.wait_for(poll, 10)
    assert seen == [WAITING, RUNNING]


async def test_a_targeted_process_is_handed_only_to_its_executor(rt: Runtime) -> None:
    poll_a = await _parked(rt, EXEC_A, "a", timeout=1.0)
    poll_b = await _parked(rt, EXEC_B, "b")
    submitted = await submit_process(rt, USER, _spec(executornames=["b"]))
    got = await asyncio.wait_for(poll_b, 10)
    assert got["processid"] == submitted["processid"] and got["assignedexecutorid"] == EXEC_B
    assert await asyncio.wait_for(poll_a, 10) is None  # A's long-poll ran out, with nothing


async def test_a_rolled_back_submission_hands_nothing_and_the_executor_keeps_waiting(rt: Runtime) -> None:
    first = await submit_process(rt, USER, _spec())
    # Take it, so the executor parks with the queue empty.
    taken = await _long_poll(rt, EXEC_A, "dev", _executor(EXEC_A, "a"), -1)
    assert taken is not None and taken["processid"] == first["processid"]
    poll = await _parked(rt, EXEC_A, "a")
    with pytest.raises(Exception):  # noqa: B017  (the store's own constraint error)
        await submit_process(rt, USER, _spec(), processid=first["processid"])  # the id is taken
    assert not poll.done()
    second = await submit_process(rt, USER, _spec())
    got = await asyncio.wait_for(poll, 10)
    assert got["processid"] == second["processid"] and got["state"] == RUNNING


async def test_a_submitter_that_goes_away_does_not_strand_a_handed_process(rt: Runtime) -> None:
    # The submission, once queued, is committed whatever happens to the task that asked for it;
    # so whatever the store holds assigned to the executor, its long-poll receives.
    poll = await _parked(rt, EXEC_A, "a")
    submitter = asyncio.create_task(submit_process(rt, USER, _spec()))
    await asyncio.sleep(0)  # its write is queued (SQLite) or under way (PostgreSQL)
    submitter.cancel()
    got = await asyncio.wait_for(poll, 10)
    assert got is not None and got["state"] == RUNNING and got["assignedexecutorid"] == EXEC_A
    stored = await rt.store.read(lambda tx: tx.list_processes("dev", -1, 10))
    assert [(p["processid"], p["state"]) for p in stored] == [(got["processid"], RUNNING)]
