"""`FastRPC` (blocking lean sender): against the real server, and scripted HTTP peers for edge cases.

Its asyncio twin is exercised through the gateway's `LeanRPC` in tests/gateway/test_rpc.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sdk import Colonies, ColoniesConnectionError, Conditions, FuncSpec, NotFoundError, ProcessState, messages
from sdk.fastrpc import FastRPC
from tests.harness.http_peer import reply
from tests.harness.ports import free_port
from tests.harness.server import DEV_COLONY, DEV_PRVKEY

Script = Callable[[int], "bytes | None"]


class Peer:
    """An HTTP peer on one thread answering request n of each connection with script(n);
    None = close that connection without a byte."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections: list[int] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="peer")
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            self.connections.append(0)
            with conn, conn.makefile("rb") as rfile:
                while True:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = rfile.readline()
                        if not line:
                            break
                        head += line
                    if not head.endswith(b"\r\n\r\n"):
                        break
                    length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n")
                                      if ln.lower().startswith(b"content-length")))
                    rfile.read(length)
                    answer = self.script(self.connections[-1])
                    self.connections[-1] += 1
                    if answer is None:
                        break
                    conn.sendall(answer)

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        self.listener.close()
        self.thread.join()


@pytest.fixture
def peer_factory() -> Iterator[Callable[[Script], Peer]]:
    peers: list[Peer] = []

    def make(script: Script) -> Peer:
        peers.append(Peer(script))
        return peers[-1]

    yield make
    for p in peers:
        p.stop()


def test_calls_from_many_threads_against_the_real_server(client: Colonies) -> None:
    rpc = FastRPC.for_client(client)
    try:
        spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="nobody"))
        with ThreadPoolExecutor(4) as pool:
            submitted = list(pool.map(lambda _: rpc.send(messages.submit(spec)), range(20)))
        got = rpc.send(messages.get_process(submitted[0].processid))
        assert got.processid == submitted[0].processid and got.state == ProcessState.WAITING
        assert len({p.processid for p in submitted}) == 20
        with pytest.raises(NotFoundError):
            rpc.send(messages.get_process("ab" * 32))
    finally:
        rpc.close()


def test_unreachable_server_is_a_connection_error() -> None:
    rpc = FastRPC("127.0.0.1", free_port(), False, DEV_PRVKEY, timeout=5)
    with pytest.raises(ColoniesConnectionError, match="cannot connect"):
        rpc.send(messages.get_process("ab" * 32))


def test_chunked_reply_and_server_closing_after_a_reply(peer_factory: Callable[[Script], Peer]) -> None:
    process: dict[str, Any] = {"processid": "ab" * 32, "state": 2}
    peer = peer_factory(lambda n: reply(process, chunked=True, close=True))
    rpc = FastRPC("127.0.0.1", peer.port, False, DEV_PRVKEY)
    try:
        assert rpc.send(messages.get_process("ab" * 32)).state == ProcessState.SUCCESS
        assert rpc.send(messages.get_process("ab" * 32)).state == ProcessState.SUCCESS
        assert len(peer.connections) == 2  # "connection: close" was honoured
    finally:
        rpc.close()


def test_error_reply_is_the_typed_error(peer_factory: Callable[[Script], Peer]) -> None:
    peer = peer_factory(lambda n: reply({"status": 404, "message": "no such process"}, status=404))
    rpc = FastRPC("127.0.0.1", peer.port, False, DEV_PRVKEY)
    try:
        with pytest.raises(NotFoundError, match="no such process"):
            rpc.send(messages.get_process("ab" * 32))
        with pytest.raises(NotFoundError):  # the connection stays usable after an error reply
            rpc.send(messages.get_process("ab" * 32))
        assert len(peer.connections) == 1
    finally:
        rpc.close()


def test_stale_kept_alive_connection_is_retried_except_for_submit(peer_factory: Callable[[Script], Peer]) -> None:
    process: dict[str, Any] = {"processid": "ab" * 32, "state": 0}
    # Each connection answers once, then drops the next request without a byte.
    peer = peer_factory(lambda n: reply(process) if n == 0 else None)
    rpc = FastRPC("127.0.0.1", peer.port, False, DEV_PRVKEY)
    try:
        rpc.send(messages.get_process("ab" * 32))
        rpc.send(messages.get_process("ab" * 32))  # stale reuse → silently retried on a new connection
        assert len(peer.connections) == 2
        spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="x"))
        with pytest.raises(ColoniesConnectionError, match="closed the connection"):
            rpc.send(messages.submit(spec))  # never resent: the server may have queued it
    finally:
        rpc.close()
