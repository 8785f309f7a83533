"""The lean RPC sender: against the real server, and against scripted HTTP peers for edge cases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway.rpc import LeanRPC
from sdk import Conditions, FuncSpec, ProcessState
from sdk.errors import ColoniesConnectionError, NotFoundError
from tests.harness.http_peer import reply
from tests.harness.ports import free_port
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ServerHandle


async def peer(script: Callable[[int], bytes | None]) -> tuple[asyncio.Server, int, list[int]]:
    """An HTTP peer answering request n of each connection with script(n); None = close silently."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                answer = script(connections[-1])
                connections[-1] += 1
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


async def test_submit_and_get_process_against_the_real_server(server: ServerHandle) -> None:
    rpc = LeanRPC(server.host, server.port, False, DEV_PRVKEY)
    try:
        spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="nobody"))
        submitted = await asyncio.gather(*(rpc.submit(spec) for _ in range(20)))
        got = await rpc.get_process(submitted[0].processid)
        assert got.processid == submitted[0].processid and got.state == ProcessState.WAITING
        with pytest.raises(NotFoundError):
            await rpc.get_process("ab" * 32)
    finally:
        await rpc.aclose()


async def test_unreachable_server_is_a_connection_error() -> None:
    rpc = LeanRPC("127.0.0.1", free_port(), False, DEV_PRVKEY, timeout=5)
    with pytest.raises(ColoniesConnectionError, match="cannot connect"):
        await rpc.get_process("ab" * 32)


async def test_chunked_reply_and_server_closing_after_a_reply() -> None:
    process = {"processid": "ab" * 32, "state": 2}
    server, port, connections = await peer(lambda n: reply(process, chunked=True, close=True))
    rpc = LeanRPC("127.0.0.1", port, False, DEV_PRVKEY)
    try:
        assert (await rpc.get_process("ab" * 32)).state == ProcessState.SUCCESS
        assert (await rpc.get_process("ab" * 32)).state == ProcessState.SUCCESS
        assert len(connections) == 2  # "connection: close" was honoured
    finally:
        await rpc.aclose()
        server.close()
        await server.wait_closed()


async def test_stale_kept_alive_connection_is_retried_for_reads_only() -> None:
    process = {"processid": "ab" * 32, "state": 0}
    # The first connection answers once, then drops the next request without a byte.
    server, port, connections = await peer(lambda n: reply(process) if n == 0 else None)
    rpc = LeanRPC("127.0.0.1", port, False, DEV_PRVKEY)
    try:
        await rpc.get_process("ab" * 32)
        await rpc.get_process("ab" * 32)  # stale reuse → silently retried on a new connection
        assert len(connections) == 2
        spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="x"))
        with pytest.raises(ColoniesConnectionError, match="closed the connection"):
            await rpc.submit(spec)  # never resent: the server may have queued it
    finally:
        await rpc.aclose()
        server.close()
        await server.wait_closed()
