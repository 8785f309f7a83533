"""POST /api outside ASGI (colonies_server.transport): HTTP behaviour on a raw socket.

The fast path must keep what uvicorn's ASGI cycle gave: pipelined requests answered in order,
keep-alive, HTTP/1.0 and `Connection: close`, `Expect: 100-continue` (curl sends it for large
bodies), and an early 413 for an oversized body that closes the connection.
"""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest

from tests.harness.server import SERVER_PRVKEY, ServerHandle

from .conftest import envelope


def _post(body: bytes, *, version: str = "1.1", extra: str = "", path: str = "/api") -> bytes:
    head = (f"POST {path} HTTP/{version}\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


class Reader:
    """Reads HTTP/1.x replies off a raw socket, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def reply(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed before a reply head: {self.buf!r}"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        try:
            return not self._fill()
        except ConnectionResetError:
            return True


def _payload(body: bytes) -> Any:
    return json.loads(base64.b64decode(json.loads(body)["payload"]))


def _version_call() -> bytes:
    return json.dumps(envelope({"msgtype": "versionmsg"}, SERVER_PRVKEY)).encode()


def _connect(server: ServerHandle) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock, Reader(sock)


def test_pipelined_requests_are_answered_in_order_on_one_connection(module_server: ServerHandle) -> None:
    colony_lookup = json.dumps(envelope({"msgtype": "getcolonymsg", "colonyname": "no-such-colony"},
                                        SERVER_PRVKEY)).encode()
    sock, r = _connect(module_server)
    with sock:
        # Three requests in one write: /api, /health (ASGI route), /api again.
        sock.sendall(_post(_version_call()) + b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n" + _post(colony_lookup))
        first, health, third = r.reply(), r.reply(), r.reply()
        assert first[0] == 200 and "buildversion" in _payload(first[2])
        assert health[0] == 200
        assert third[0] != 200 and json.loads(third[2])["error"] is True
        # The connection is still usable afterwards.
        sock.sendall(_post(_version_call()))
        assert r.reply()[0] == 200


@pytest.mark.parametrize("version,extra", [("1.0", ""), ("1.1", "Connection: close\r\n")])
def test_a_request_asking_to_close_gets_its_reply_then_the_close(module_server: ServerHandle, version: str,
                                                                  extra: str) -> None:
    sock, r = _connect(module_server)
    with sock:
        sock.sendall(_post(_version_call(), version=version, extra=extra))
        status, headers, body = r.reply()
        assert status == 200 and "buildversion" in _payload(body)
        assert headers.get("connection") == "close"
        assert r.closed()


def test_expect_100_continue_gets_an_interim_reply_before_the_body_is_sent(module_server: ServerHandle) -> None:
    body = _version_call()
    sock, r = _connect(module_server)
    with sock:
        sock.sendall(_post(b"", extra="Expect: 100-continue\r\n").replace(b"Content-Length: 0",
                                                                          f"Content-Length: {len(body)}".encode()))
        interim = r.reply()
        assert interim[0] == 100
        sock.sendall(body)
        status, _, out = r.reply()
        assert status == 200 and "buildversion" in _payload(out)


def test_an_oversized_body_is_refused_with_413_before_it_is_read(module_server: ServerHandle) -> None:
    sock, r = _connect(module_server)
    with sock:
        limit = 16 * 1024 * 1024
        # Announced too large: refused on the headers alone, no body sent at all.
        sock.sendall(f"POST /api HTTP/1.1\r\nHost: t\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
        status, headers, out = r.reply()
        assert status == 413 and json.loads(out)["error"] is True
        assert "larger than" in _payload(out)["message"]
        assert headers.get("connection") == "close"
        assert r.closed()


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(module_server: ServerHandle) -> None:
    sock, r = _connect(module_server)
    with sock:
        sock.sendall(b"POST /api HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * (1024 * 1024)
        status = None
        for _ in range(20):  # 20 MiB > the 16 MiB limit; the reply comes before the end
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        status, _, out = r.reply()
        assert status == 413 and "larger than" in _payload(out)["message"]


def test_a_chunked_body_within_the_limit_is_served(module_server: ServerHandle) -> None:
    body = _version_call()
    half = len(body) // 2
    sock, r = _connect(module_server)
    with sock:
        sock.sendall(b"POST /api HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n" % half + body[:half] + b"\r\n"
                     + b"%x\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
        status, _, out = r.reply()
        assert status == 200 and "buildversion" in _payload(out)


def test_api_with_a_query_string_and_other_methods_still_answer(module_server: ServerHandle) -> None:
    sock, r = _connect(module_server)
    with sock:
        sock.sendall(_post(_version_call(), path="/api?x=1"))
        status, _, out = r.reply()
        assert status == 200 and "buildversion" in _payload(out)
        sock.sendall(b"GET /api HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, out = r.reply()
        assert status == 404 and "no route GET /api" in _payload(out)["message"]
