"""The server's own websocket protocol (colonies_server.wsserver) on a real server: the upgrade,
frames in both directions, the limits and the ways a connection ends. The pubsub behaviour on top
of it is tested in test_pubsub.py."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.colonies_server._rpc import DEV_PRVKEY, envelope
from tests.harness.server import ThreadServer


@pytest.fixture
def server(db_url: str) -> Iterator[ThreadServer]:
    srv = ThreadServer(db=db_url, dev=True, timer_period=3600, cron_period=3600)
    srv.start()
    yield srv
    srv.stop()


def _subscribe_unknown() -> str:
    return json.dumps(envelope({"msgtype": "subscribeprocessmsg", "processid": "f" * 64, "executortype": "",
                                "state": 2, "timeout": 5, "colonyname": "dev"}, DEV_PRVKEY))


def _payload(raw: str | bytes) -> dict[str, Any]:
    env = json.loads(raw)
    return {"error": env["error"], **json.loads(base64.b64decode(env["payload"]))}


class Raw:
    """A hand-driven websocket client, for what a well-behaved library will not send."""

    def __init__(self, port: int, path: str = "/pubsub", head: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((head if head is not None else
                           f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        self.status = self._head()

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _head(self) -> str:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0].decode()

    def send(self, opcode: int, payload: bytes, mask: bool = True, fin: bool = True) -> None:
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n) if n < 126 else \
            struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def frame(self) -> tuple[int, bytes]:
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return b0 & 0x0F, self._read(n)

    def close_code(self) -> int:
        while True:
            opcode, payload = self.frame()
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])

    def close(self) -> None:
        self.sock.close()


def test_a_library_client_completes_the_upgrade_and_gets_replies(server: ThreadServer) -> None:
    # websockets checks Sec-WebSocket-Accept and every frame we send.
    with connect(f"ws://127.0.0.1:{server.handle.port}/pubsub") as ws:
        ws.send(_subscribe_unknown())
        reply = _payload(ws.recv(timeout=5))
        assert reply["error"] and reply["status"] == 403 and "Invalid process" in reply["message"]


def test_a_message_in_fragments_is_joined(server: ThreadServer) -> None:
    text = _subscribe_unknown()
    with connect(f"ws://127.0.0.1:{server.handle.port}/pubsub") as ws:
        ws.send([text[:10], text[10:500], text[500:]])
        assert "Invalid process" in _payload(ws.recv(timeout=5))["message"]


def test_a_binary_message_is_read_like_text(server: ThreadServer) -> None:
    with connect(f"ws://127.0.0.1:{server.handle.port}/pubsub") as ws:
        ws.send(_subscribe_unknown().encode())
        assert "Invalid process" in _payload(ws.recv(timeout=5))["message"]


def test_a_ping_is_answered(server: ThreadServer) -> None:
    with connect(f"ws://127.0.0.1:{server.handle.port}/pubsub") as ws:
        assert ws.ping(b"hello").wait(5)


def test_the_clients_close_is_answered_with_its_code(server: ThreadServer) -> None:
    with connect(f"ws://127.0.0.1:{server.handle.port}/pubsub") as ws:
        ws.close(4001, "bye")
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4001


def test_other_paths_are_refused_with_403(server: ThreadServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.handle.port}/elsewhere")
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("head", [
    "GET /pubsub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n",  # no key
    "GET /pubsub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",  # a key of 5 bytes
    "GET /pubsub HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",  # an old version
])
def test_malformed_upgrades_get_400(server: ThreadServer, head: str) -> None:
    raw = Raw(server.handle.port, head=head)
    try:
        assert raw.status.startswith("HTTP/1.1 400")
    finally:
        raw.close()


@pytest.mark.parametrize(("send", "code"), [
    (lambda raw: raw.send(0x1, b"{}", mask=False), 1002),  # unmasked
    (lambda raw: raw.send(0x1 | 0x40, b"{}"), 1002),  # a reserved bit
    (lambda raw: raw.send(0x0, b"{}"), 1002),  # a continuation of nothing
    (lambda raw: raw.send(0x9, b"x" * 126), 1002),  # a control frame over 125 bytes
    (lambda raw: raw.send(0x3, b"{}"), 1002),  # an unknown data opcode
    (lambda raw: raw.send(0xB, b""), 1002),  # an unknown control opcode
    (lambda raw: raw.send(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
])
def test_protocol_errors_close_with_their_code(server: ThreadServer, send: Any, code: int) -> None:
    raw = Raw(server.handle.port)
    try:
        assert raw.status.startswith("HTTP/1.1 101")
        send(raw)
        assert raw.close_code() == code
    finally:
        raw.close()


def test_the_socket_still_works_after_an_error_frame_and_a_ping(server: ThreadServer) -> None:
    raw = Raw(server.handle.port)
    try:
        raw.send(0x9, b"are you there")
        assert raw.frame() == (0xA, b"are you there")
        raw.send(0x1, b"not json")
        opcode, payload = raw.frame()
        assert opcode == 0x1 and _payload(payload)["error"]
        raw.send(0x1, _subscribe_unknown().encode())
        assert "Invalid process" in _payload(raw.frame()[1])["message"]
    finally:
        raw.close()


def test_a_message_over_ws_max_size_closes_with_1009(db_url: str) -> None:
    srv = ThreadServer(db=db_url, dev=True, uvicorn_options={"ws_max_size": 1000})
    srv.start()
    raw = Raw(srv.handle.port)
    try:
        raw.send(0x1, b"x" * 999, fin=False)
        raw.send(0x0, b"xx")  # 1,001 bytes in all
        assert raw.close_code() == 1009
    finally:
        raw.close()
        srv.stop()


def test_keepalive_pings_drop_a_client_that_never_answers(db_url: str) -> None:
    srv = ThreadServer(db=db_url, dev=True, uvicorn_options={"ws_ping_interval": 0.1, "ws_ping_timeout": 0.3})
    srv.start()
    try:
        with connect(f"ws://127.0.0.1:{srv.handle.port}/pubsub") as ws:  # answers pings itself
            ws.send(_subscribe_unknown())
            ws.recv(timeout=5)
            time.sleep(0.8)
            ws.send(_subscribe_unknown())
            assert "Invalid process" in _payload(ws.recv(timeout=5))["message"]
        raw = Raw(srv.handle.port)  # never answers
        try:
            raw.send(0x1, _subscribe_unknown().encode())  # a subscription keeps the socket open for 5 s
            assert raw.frame()[0] == 0x1
            started = time.monotonic()
            opcode, payload = raw.frame()
            while opcode == 0x9:  # the pings it ignores
                opcode, payload = raw.frame()
            assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1011
            assert time.monotonic() - started < 3  # well before the subscription's 5 s
        finally:
            raw.close()
    finally:
        srv.stop()


def test_shutdown_closes_open_sockets_with_1012(db_url: str) -> None:
    srv = ThreadServer(db=db_url, dev=True)
    srv.start()
    with connect(f"ws://127.0.0.1:{srv.handle.port}/pubsub") as ws:
        ws.send(_subscribe_unknown())  # keeps the socket open for 5 s
        ws.recv(timeout=5)
        srv.stop()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
