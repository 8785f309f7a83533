"""`FastRPC` (blocking lean sender): against the real server, and scripted HTTP peers for edge cases.

Its asyncio twin is exercised through the gateway's `LeanRPC` in tests/gateway/test_rpc.py.
"""

from __future__ import annotations

import fcntl
import socket
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sdk import (
    Colonies,
    ColoniesConnectionError,
    ColoniesError,
    Conditions,
    FuncSpec,
    NotFoundError,
    ProcessState,
    messages,
)
from sdk import envelope as sdk_envelope
from sdk.fastrpc import MAX_BODY, FastRPC, _SyncConn
from tests.harness.http_peer import reply
from tests.harness.ports import free_port
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ThreadServer

MAX_HEADERS = 100  # reply head lines the blocking sender reads before it gives up
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


def test_sessions_bind_each_connection_once_and_then_nothing_is_signed(
        client: Colonies, monkeypatch: pytest.MonkeyPatch) -> None:
    rpc = FastRPC.for_client(client)
    rpc.sessions = True
    try:
        spec = FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="nobody"))
        first = rpc.send(messages.submit(spec))  # binds the new connection (signing the nonce), then sends
        conn = rpc._idle[-1]
        assert conn.session is not None and rpc.sessions
        signed: list[str] = []
        real_sign = sdk_envelope.sign
        monkeypatch.setattr(sdk_envelope, "sign", lambda payload, key: signed.append(payload) or real_sign(payload, key))
        got = rpc.send(messages.get_process(first.processid))
        second = rpc.send(messages.submit(spec))
        assert got.processid == first.processid and second.initiatorid == first.initiatorid
        assert signed == []  # under the session: no signature made
        # A call with another key never goes under our session: it is signed.
        with pytest.raises(ColoniesError):
            rpc.send(messages.get_executors(DEV_COLONY, prvkey="11" * 32))
        assert len(signed) == 1 and conn.session is not None
        # The server refusing the marker (here: a token it never issued) gets the message signed instead.
        assert conn.session is not None
        conn.session = (conn.session[0], "00" * 32)
        again = rpc.send(messages.get_process(first.processid))
        assert again.processid == first.processid and len(signed) == 2 and conn.session is None
    finally:
        rpc.close()


def test_sessions_refused_by_the_server_mean_signed_calls(tmp_path: Any) -> None:
    srv = ThreadServer(db=f"sqlite:///{tmp_path / 'c.db'}", sessions=False)
    srv.start()
    rpc = FastRPC(srv.handle.host, srv.handle.port, False, DEV_PRVKEY, sessions=True)
    try:
        assert isinstance(rpc.send(messages.get_executors(DEV_COLONY)), list)
        assert rpc.sessions is False and rpc._idle[-1].session is None
        assert isinstance(rpc.send(messages.get_executors(DEV_COLONY)), list)
    finally:
        rpc.close()
        srv.stop()


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


# -- reading the reply head: pure helpers, and _exchange over a socket pair ----------------------

def _exchange_in_parts(parts: list[bytes], timeout: float = 5.0) -> tuple[tuple[int, bytes], bool]:
    """FastRPC._exchange on one end of a socket pair while the other end writes `parts`, each only
    once the client has taken the previous one out of the socket, so each arrives in its own read.
    Returns (status, body) and whether the exchange closed the connection."""
    a, b = socket.socketpair()
    conn = _SyncConn(a)
    got: dict[str, Any] = {}

    def client() -> None:
        try:
            got["reply"] = FastRPC._exchange(conn, b"request", False, timeout)
            got["closed"] = conn.closed
            assert conn.sock.gettimeout() == conn.timeout == timeout
        except Exception as e:
            got["error"] = e

    thread = threading.Thread(target=client, name="exchange")
    thread.start()
    try:
        assert b.recv(100) == b"request"
        waiting = threading.Event()
        for part in parts:
            b.sendall(part)
            deadline = time.monotonic() + 5
            while thread.is_alive() and _unread(a) and time.monotonic() < deadline:
                waiting.wait(0.001)
        b.shutdown(socket.SHUT_WR)  # then the server closes: a reply cut short ends in EOF
    finally:
        thread.join(10)
        b.close()
        conn.close()
    if "error" in got:
        raise got["error"]
    return got["reply"], got["closed"]


def _unread(sock: socket.socket) -> int:
    buf = bytearray(4)
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"


@pytest.mark.parametrize("cut", [5, 20, len(HEAD) - 3, len(HEAD) - 2, len(HEAD) - 1])
def test_a_head_split_across_reads_is_read_whole(cut: int) -> None:
    (status, body), closed = _exchange_in_parts([HEAD[:cut], HEAD[cut:] + b"hello"])
    assert (status, body) == (200, b"hello") and not closed


def test_header_names_and_values_are_read_in_any_case() -> None:
    body = b"two\r\n\r\nhalves"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:5], body[5:])) + b"0\r\n\r\n"
    head = b"HTTP/1.1 201 Created\r\nTRANSFER-Encoding: Chunked\r\nConnection: Close\r\n\r\n"
    for parts in ([head + chunked], [head[:30], head[30:] + chunked[:4], chunked[4:]]):
        (status, got), closed = _exchange_in_parts(parts)
        assert (status, got) == (201, body) and closed


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\ncontent-length: 6\n\nab\r\n\r\n",  # bare LF head, CRLF CRLF in the body
    b"HTTP/1.1 200 OK\r\ncontent-length: 6\n\r\nab\r\n\r\n",  # a head ending in LF CRLF
    b"HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 6\r\n\r\nab\r\n\r\n",  # a bare LF inside a CRLF head
])
def test_heads_with_bare_line_feeds_end_where_they_did(reply: bytes) -> None:
    (status, body), _ = _exchange_in_parts([reply])
    assert (status, body) == (200, b"ab\r\n\r\n")


def test_a_head_longer_than_one_read_is_read_line_by_line() -> None:
    head = b"HTTP/1.1 200 OK\r\nx-big: " + b"y" * 20000 + b"\r\ncontent-length: 2\r\n\r\n"
    (status, body), _ = _exchange_in_parts([head + b"ok"])
    assert (status, body) == (200, b"ok")


@pytest.mark.parametrize("lines", [99, 100])
def test_too_many_reply_headers(lines: int) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"x-h: 1\r\n" * (lines - 1) + b"content-length: 2\r\n\r\n"
    if lines < MAX_HEADERS:
        assert _exchange_in_parts([head + b"ok"])[0] == (200, b"ok")
    else:  # the status line and 100 headers
        with pytest.raises(ValueError, match="too many reply headers"):
            _exchange_in_parts([head + b"ok"])


def test_an_oversized_body_is_refused_on_its_head() -> None:
    with pytest.raises(ValueError, match="too large"):
        _exchange_in_parts([b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY + 1)])


def test_a_server_closing_before_answering() -> None:
    with pytest.raises(ConnectionError, match="before answering"):
        _exchange_in_parts([])
    with pytest.raises(ConnectionError, match="mid-reply"):
        _exchange_in_parts([b"HTTP/1.1 200 OK\r\ncontent-le"])


def test_the_socket_timeout_follows_each_exchange() -> None:
    a, b = socket.socketpair()
    conn = _SyncConn(a)
    try:
        for timeout in (7.0, 7.0, 3.0):
            b.sendall(HEAD + b"hello")
            assert FastRPC._exchange(conn, b"request", True, timeout) == (200, b"hello")
            assert a.gettimeout() == conn.timeout == timeout
    finally:
        conn.close()
        b.close()

