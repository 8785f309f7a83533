"""The shared websocket waiter against the real server: many waits on one socket, socket epochs."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from gateway.pubsub import ProcessWaiter
from sdk import AsyncColonies, Conditions, FuncSpec, Process, ProcessState
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ServerHandle

EXECUTOR_TYPE = "cli"  # the --dev executor's type, so DEV_PRVKEY can assign the test processes


async def submit(client: AsyncColonies, n: int) -> list[str]:
    spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype=EXECUTOR_TYPE),
                    maxexectime=60)
    return [(await client.submit(spec)).processid for _ in range(n)]


async def finish(client: AsyncColonies, ok: bool) -> str:
    """Assign one process to the dev executor and close (or fail) it."""
    process = await client.assign(DEV_COLONY, 5)
    assert process is not None
    if ok:
        await client.close(process.processid, [process.processid[:6]])
    else:
        await client.fail(process.processid, ["Traceback: it failed"])
    return process.processid


async def wait_past_first_socket(client: AsyncColonies, waiter: ProcessWaiter) -> Process | None:
    """Submit a process and wait for it until the first socket's epoch ended and the wait moved
    to a second socket; then finish it and return what the wait saw."""
    (pid,) = await submit(client, 1)
    task = asyncio.ensure_future(waiter.wait(pid, 30))
    while waiter.sockets_opened < 2:
        done, _ = await asyncio.wait({task}, timeout=0.1)
        assert not done
    await finish(client, ok=True)
    return await task


def waiter_for(server: ServerHandle, **kw: float) -> ProcessWaiter:
    return ProcessWaiter(f"ws://{server.host}:{server.port}/pubsub", DEV_PRVKEY, DEV_COLONY, EXECUTOR_TYPE, **kw)


@pytest.mark.parametrize("one_subscription", [False, True], ids=["two-subscriptions", "one-subscription"])
async def test_many_waits_share_one_socket_and_see_success_and_failure(server: ServerHandle,
                                                                      one_subscription: bool) -> None:
    """Also with one (SUCCESS) subscription per process: our server ends it on FAILED too."""
    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server)
    if one_subscription:
        waiter.one_subscription()
    try:
        pids = await submit(client, 6)
        waits = [asyncio.ensure_future(waiter.wait(pid, 30)) for pid in pids]
        finished = [await finish(client, ok=i % 2 == 0) for i in range(6)]
        results = {p.processid: p for p in await asyncio.gather(*waits) if p is not None}
        assert set(results) == set(finished)
        states = sorted(p.state for p in results.values())
        assert states == [ProcessState.SUCCESS] * 3 + [ProcessState.FAILED] * 3
        assert waiter.sockets_opened == 1 and waiter.pending == 0
    finally:
        await waiter.close()
        await client.aclose()


async def test_a_wait_outliving_its_socket_moves_to_a_new_one(server: ServerHandle) -> None:
    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server, lifetime=2.0, min_left=1.0)
    try:
        process = await wait_past_first_socket(client, waiter)
        assert process is not None and process.state == ProcessState.SUCCESS
    finally:
        await waiter.close()
        await client.aclose()


async def test_timeout_returns_none(server: ServerHandle) -> None:
    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server)
    try:
        (pid,) = await submit(client, 1)
        assert await waiter.wait(pid, 0.2) is None
        assert waiter.pending == 0
    finally:
        await waiter.close()
        await client.aclose()


def _wire_spec() -> dict[str, object]:
    from sdk import messages

    spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype=EXECUTOR_TYPE),
                    maxexectime=60)
    return messages.submit(spec).msg["spec"]  # type: ignore[no-any-return]


async def test_submit_and_wait_on_the_socket(server: ServerHandle) -> None:
    """submitandsubscribemsg: submissions and their ends share one socket; refusals and timeouts."""
    from sdk.crypto import new_prvkey
    from sdk.errors import ForbiddenError

    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server)
    try:
        calls = [asyncio.ensure_future(waiter.submit_and_wait(_wire_spec(), 30, 10)) for _ in range(5)]
        finished = [await finish(client, ok=i != 2) for i in range(5)]
        results = await asyncio.gather(*calls)
        assert sorted(pid for pid, _ in results) == sorted(finished)
        assert sorted(p.state for _, p in results if p is not None) == [ProcessState.SUCCESS] * 4 + [
            ProcessState.FAILED]
        for pid, ended in results:  # what the gateway answers with: output, or errors
            assert ended is not None and ended.processid == pid
            if ended.state == ProcessState.SUCCESS:
                assert ended.output == [pid[:6]] and ended.errors == []
            else:
                assert ended.errors == ["Traceback: it failed"]
        assert waiter.sockets_opened == 1 and waiter.pending == 0 and waiter.socket_submits == 5
        # Nobody runs this one: the wait times out with the id known and nothing left behind.
        pid, process = await waiter.submit_and_wait(_wire_spec(), 0.2, 10)
        assert process is None and len(pid) == 64 and waiter.pending == 0
        assert (await client.get_process(pid)).state == ProcessState.WAITING
        stranger = waiter_for(server)
        stranger.prvkey = new_prvkey()
        await _refused(stranger, ForbiddenError, "not a member")
    finally:
        await waiter.close()
        await client.aclose()


async def test_batched_submissions_share_frames_and_each_caller_gets_its_own_answer(server: ServerHandle) -> None:
    """The "submitbatch" extension: a loop turn's submissions go in one signed frame, none is
    acknowledged (the id comes from the key), and refusals and too-large calls reach their own caller."""
    from gateway.pubsub import TooLargeForSocket
    from sdk.crypto import id_from_prvkey
    from sdk.errors import BadRequestError
    from sdk.messages import keyed_process_id

    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server)
    waiter.batch_submit = True
    try:
        calls = [asyncio.ensure_future(waiter.submit_and_wait(_wire_spec(), 30, 10, f"key-{i}")) for i in range(5)]
        finished = [await finish(client, ok=i != 2) for i in range(5)]
        results = await asyncio.gather(*calls)
        me = id_from_prvkey(DEV_PRVKEY)
        assert [pid for pid, _ in results] == [keyed_process_id(me, DEV_COLONY, f"key-{i}") for i in range(5)]
        assert sorted(pid for pid, _ in results) == sorted(finished)
        for pid, ended in results:
            assert ended is not None and ended.processid == pid
            if ended.state == ProcessState.SUCCESS:
                assert ended.output == [pid[:6]] and ended.errors == []
            else:
                assert ended.errors == ["Traceback: it failed"]
        assert waiter.socket_submits == 5 and waiter.batches_sent < 5 and waiter.pending == 0

        bad = dict(_wire_spec(), maxretries="x")
        good_call = asyncio.ensure_future(waiter.submit_and_wait(_wire_spec(), 30, 10, "good"))
        bad_call = asyncio.ensure_future(waiter.submit_and_wait(bad, 30, 10, "bad"))
        await finish(client, ok=True)
        _, ended = await good_call
        assert ended is not None and ended.state == ProcessState.SUCCESS
        with pytest.raises(BadRequestError, match="maxretries"):
            await bad_call
        huge = dict(_wire_spec(), kwargs={"blob": "x" * 300_000})
        with pytest.raises(TooLargeForSocket):
            await waiter.submit_and_wait(huge, 30, 10, "huge")
        pid, ended = await waiter.submit_and_wait(_wire_spec(), 0.3, 10, "nobody-runs-it")
        assert ended is None and (await client.get_process(pid)).state == ProcessState.WAITING
        assert waiter.pending == 0
    finally:
        await waiter.close()
        await client.aclose()


async def test_submit_and_wait_without_a_reachable_socket_is_a_connection_error() -> None:
    """Mapped to 503 by the gateway like an unreachable server over HTTP (not a 500)."""
    from sdk.errors import ColoniesConnectionError
    from tests.harness.ports import free_port

    waiter = ProcessWaiter(f"ws://127.0.0.1:{free_port()}/pubsub", DEV_PRVKEY, DEV_COLONY, EXECUTOR_TYPE)
    try:
        with pytest.raises(ColoniesConnectionError, match="cannot open ws://127.0.0.1"):
            await waiter.submit_and_wait(_wire_spec(), 5, 5)
        assert waiter.pending == 0
    finally:
        await waiter.close()


async def test_an_acknowledgement_without_a_process_id_fails_the_submission() -> None:
    """A server that acknowledges a submission with no process id: a clear error, nothing left waiting."""
    import base64
    import json

    from websockets.asyncio.server import serve

    from sdk.errors import ColoniesError

    async def acknowledge_badly(ws: Any) -> None:
        async for text in ws:
            msg = json.loads(base64.b64decode(json.loads(text)["payload"]))
            body = {"requestid": msg["requestid"], "process": {"state": 0}}
            await ws.send(json.dumps({"payloadtype": "submitandsubscribemsg",
                                      "payload": base64.b64encode(json.dumps(body).encode()).decode()}))

    async with serve(acknowledge_badly, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        waiter = ProcessWaiter(f"ws://127.0.0.1:{port}/pubsub", DEV_PRVKEY, DEV_COLONY, EXECUTOR_TYPE)
        await _refused(waiter, ColoniesError, "without a process id")


async def _refused(waiter: ProcessWaiter, error: type[Exception], match: str) -> None:
    """A submission on `waiter` fails with `error`, leaving nothing pending; closes the waiter."""
    try:
        with pytest.raises(error, match=match):
            await waiter.submit_and_wait(_wire_spec(), 5, 5)
        assert waiter.pending == 0 and waiter.socket_submits == 0
    finally:
        await waiter.close()


async def test_an_unreadable_end_frame_leaves_the_answer_to_the_deadline_read(caplog: pytest.LogCaptureFixture) -> None:
    """End frames are read for id and state only; one whose output is not a list gives None
    (the gateway then asks get_process) and a warning, never an exception out of the wait."""
    import base64
    import json

    from websockets.asyncio.server import serve

    def frame(payloadtype: str, body: Any) -> str:
        return json.dumps({"payloadtype": payloadtype, "payload": base64.b64encode(json.dumps(body).encode()).decode()})

    async def acknowledge_then_end(ws: Any) -> None:
        n = 0
        async for text in ws:
            n += 1
            msg = json.loads(base64.b64decode(json.loads(text)["payload"]))
            pid = f"{n:064x}"
            await ws.send(frame("submitandsubscribemsg", {"requestid": msg["requestid"],
                                                          "process": {"processid": pid, "state": 0}}))
            out = "not a list" if n == 1 else [42]
            await ws.send(frame("subscribeprocessmsg", {"processid": pid, "state": 2, "out": out, "errors": None}))

    async with serve(acknowledge_then_end, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        waiter = ProcessWaiter(f"ws://127.0.0.1:{port}/pubsub", DEV_PRVKEY, DEV_COLONY, EXECUTOR_TYPE)
        try:
            pid, ended = await waiter.submit_and_wait(_wire_spec(), 5, 5)
            assert pid == f"{1:064x}" and ended is None
            assert "unreadable end of process" in caplog.text
            pid, ended = await waiter.submit_and_wait(_wire_spec(), 5, 5)
            assert ended is not None and ended.output == [42] and ended.errors == []
            assert ended.state == ProcessState.SUCCESS and waiter.pending == 0
        finally:
            await waiter.close()


async def test_sockets_bound_to_a_session_carry_frames_without_signatures(
        server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "sessions" extension: each new socket is bound once (one signature: the nonce's), and
    every frame after that, submissions and subscriptions alike, goes under the session."""
    from sdk import envelope as sdk_envelope

    signed: list[str] = []
    real_sign = sdk_envelope.sign
    monkeypatch.setattr(sdk_envelope, "sign", lambda payload, key: signed.append(payload) or real_sign(payload, key))
    client = AsyncColonies(server.host, server.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(server, lifetime=3.0, min_left=1.5)
    waiter.batch_submit = waiter.sessions = True
    try:
        before = len(signed)
        calls = [asyncio.ensure_future(waiter.submit_and_wait(_wire_spec(), 30, 10, f"s-{i}")) for i in range(4)]
        finished = [await finish(client, ok=True) for _ in range(4)]
        results = await asyncio.gather(*calls)
        assert sorted(pid for pid, _ in results) == sorted(finished)
        assert all(ended is not None and ended.state == ProcessState.SUCCESS for _, ended in results)
        process = await wait_past_first_socket(client, waiter)  # a subscription, moved to a second socket
        assert process is not None and process.state == ProcessState.SUCCESS
        kinds = [json.loads(base64.b64decode(payload))["msgtype"] for payload in signed[before:]]
        assert kinds.count("bindconnectionmsg") == waiter.sockets_opened == 2 and waiter.sessions
        assert "submitandsubscribemsg" not in kinds and "subscribeprocessmsg" not in kinds
        assert kinds.count("closesuccessfulmsg") == 5  # the test's own client still signs
    finally:
        await waiter.close()
        await client.aclose()


async def test_a_server_refusing_sessions_gets_signed_frames(tmp_path: Any) -> None:
    from tests.harness.server import ThreadServer

    srv = ThreadServer(db=f"sqlite:///{tmp_path / 'c.db'}", sessions=False)
    srv.start()
    client = AsyncColonies(srv.handle.host, srv.handle.port, prvkey=DEV_PRVKEY)
    waiter = waiter_for(srv.handle)
    waiter.batch_submit = waiter.sessions = True
    try:
        call = asyncio.ensure_future(waiter.submit_and_wait(_wire_spec(), 30, 10, "refused-session"))
        finished = await finish(client, ok=True)
        pid, ended = await call
        assert pid == finished and ended is not None and ended.state == ProcessState.SUCCESS
        assert waiter.sessions is False
    finally:
        await waiter.close()
        await client.aclose()
        srv.stop()
