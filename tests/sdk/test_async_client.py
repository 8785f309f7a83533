"""`AsyncColonies` against the real server: the twin methods, wait and wait_many, CFS, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sdk import (
    AsyncColonies,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    Conditions,
    ConflictError,
    ForbiddenError,
    FuncSpec,
    NotFoundError,
    ProcessState,
    new_prvkey,
)
from sdk.models import Colony
from tests.harness.ports import free_port
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, SERVER_PRVKEY

COLONY = DEV_COLONY


def spec(funcname: str = "f") -> FuncSpec:
    return FuncSpec(nodename=funcname, funcname=funcname, args=[funcname],
                    conditions=Conditions(colonyname=COLONY, executortype="cli"))


async def executor(c: AsyncColonies, count: int, fail_every: int = 0) -> list[str]:
    """Assign and end `count` processes: every `fail_every`-th one fails."""
    ids = []
    for i in range(count):
        p = await c.assign(COLONY, 10)
        assert p is not None
        if fail_every and i % fail_every == 0:
            await c.fail(p.processid, [f"failed {i}"])
        else:
            await c.close(p.processid, [p.spec.funcname])
        ids.append(p.processid)
    return ids


async def test_connection_refused() -> None:
    async with AsyncColonies("127.0.0.1", free_port(), prvkey=new_prvkey()) as c:
        with pytest.raises(ColoniesConnectionError):
            await c.version()


async def test_rpc_round_trip_and_errors(aclient: AsyncColonies) -> None:
    assert "buildversion" in await aclient.version()
    assert (await aclient.get_colony(COLONY)).name == COLONY
    with pytest.raises(ForbiddenError):
        await aclient.get_colonies()
    with pytest.raises(NotFoundError):
        await aclient.get_process("0" * 64)
    with pytest.raises(ConflictError):
        await aclient.add_colony(Colony(colonyid="c" * 64, name=COLONY), prvkey=SERVER_PRVKEY)


async def test_submit_assign_close_wait(aclient: AsyncColonies) -> None:
    await aclient.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    p = await aclient.submit(spec("hello"))
    waiter = asyncio.create_task(aclient.wait(p, 20))
    await executor(aclient, 1)
    done = await waiter
    assert done.state is ProcessState.SUCCESS and done.output == ["hello"]
    assert await aclient.assign(COLONY, -1) is None


async def test_wait_many_success_and_failure(aclient: AsyncColonies, monkeypatch: pytest.MonkeyPatch) -> None:
    import sdk.async_client

    monkeypatch.setattr(sdk.async_client, "PER_SOCKET", 7)  # several sockets for 20 processes
    await aclient.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    procs = [await aclient.submit(spec(f"f{i}")) for i in range(20)]
    waiter = asyncio.create_task(aclient.wait_many(procs, 30))
    await executor(aclient, 20, fail_every=4)
    done = await waiter
    assert [d.processid for d in done] == [p.processid for p in procs]
    states = [d.state for d in done]
    assert states.count(ProcessState.FAILED) == 5 and states.count(ProcessState.SUCCESS) == 15
    assert all(d.output == [d.spec.funcname] for d in done if d.state is ProcessState.SUCCESS)


async def test_wait_many_timeout_reports_what_it_knows(aclient: AsyncColonies) -> None:
    await aclient.remove_all_processes(COLONY, prvkey=COLONY_PRVKEY)
    a = await aclient.submit(spec("a"))
    b = await aclient.submit(spec("b"))
    await executor(aclient, 1)  # ends `a` (FIFO) only
    assert [p.processid for p in await aclient.wait_many([a, a.processid], 5)] == [a.processid] * 2
    with pytest.raises(ColoniesTimeoutError) as info:
        await aclient.wait_many([a.processid, b.processid], 0.3)
    states = {p.processid: p.state for p in info.value.processes}
    assert states == {a.processid: ProcessState.SUCCESS, b.processid: ProcessState.WAITING}
    assert b.processid in info.value.message
    await aclient.remove_process(b.processid)


async def test_cfs_bytes(aclient: AsyncColonies, tmp_path: Any) -> None:
    f = await aclient.upload_bytes(COLONY, "/async", "x.bin", b"async bytes")
    assert await aclient.download_bytes(COLONY, "/async", "x.bin") == b"async bytes"
    src = tmp_path / "src.txt"
    src.write_bytes(b"from a file")
    await aclient.upload_file(COLONY, "/async", src)
    out = await aclient.download_file(COLONY, "/async", tmp_path / "copy.txt", name="src.txt")
    assert out.read_bytes() == b"from a file"
    await aclient.delete_file(COLONY, "/async", "x.bin")
    with pytest.raises(NotFoundError):
        await aclient.download_bytes(COLONY, "/async", fileid=f.fileid)


async def test_channel_subscription_ends_at_its_timeout(aclient: AsyncColonies) -> None:
    # This server does not implement channels yet and ignores the subscription (as the Go server
    # ignores unknown /pubsub messages), so nothing arrives before the deadline.
    try:
        assert await aclient.subscribe_channel("p", "c", timeout=0.5) == []
    except ColoniesError:
        pass  # a server may instead answer with an error frame
