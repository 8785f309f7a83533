"""A lean websocket client (RFC 6455) for the gateway's sockets to the server's /pubsub.

Why not the `websockets` library: on the gateway's hot path its asyncio connection cost a quarter
of the gateway's Python time per call at concurrency 1 (a send context with locks, a generator
parser, an assembler queue and a reader task woken for every frame). Here a frame is one header
and one `transport.write`, and received messages go straight from `data_received` to a callback
(`listen`). Only what /pubsub needs: text and binary messages (fragmented or not), ping/pong, the
close handshake, ws:// and wss://; no extensions (no compression), no subprotocols.

colonies_server/wsserver.py is the server side's twin (the frame layout is the same, the masking
goes the other way); the server imports nothing of ours, so the two do not share code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

__all__ = ["WebSocket", "WebSocketClosed", "WebSocketError", "connect"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 256 * 1024 * 1024
"""connect()'s default `max_size`: a message larger than this ends the socket (the server's end frames carry results of at most
a few MiB; this only stops a broken peer from filling memory)."""
MAX_HEAD = 64 * 1024

_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketError(ConnectionError):
    """The handshake failed, or the peer broke the protocol."""


class WebSocketClosed(ConnectionError):
    """The socket is closed (by either side); `code` and `reason` are the close frame's, if any."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"websocket closed ({code}{': ' + reason if reason else ''})" if code
                         else "websocket closed")


def _mask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the 4-byte `key` repeated (as one big integer: C speed, no loop in Python)."""
    n = len(data)
    if not n:
        return data
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final, masked client frame (every client frame is masked, RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + _mask(payload, key)


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer `key` with."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


class _Protocol(asyncio.Protocol):
    def __init__(self, host_header: str, path: str, max_size: int) -> None:
        self.max_size = max_size
        self._key = base64.b64encode(os.urandom(16)).decode()
        self._request = (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key}\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_sent = False
        self.on_message: Callable[[bytes | str], None] | None = None
        self.messages: deque[bytes | str] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self._buf = bytearray()
        self._open = False
        self._parts: list[bytes] = []
        self._part_op = 0
        self._part_len = 0
        self._writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._open and not self._handshake():
            return
        try:
            self._frames()
        except WebSocketError as e:
            self._fail(1002, str(e))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(WebSocketError(
                f"the server closed the connection during the handshake{f': {exc}' if exc else ''}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- the handshake ------------------------------------------------------------------------------

    def _handshake(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                self._refuse("the handshake reply's head is too large")
            return False
        head = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[:end + 4]
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            self._refuse(f"the server refused the websocket upgrade: {head[0][:120]!r}")
            return False
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("upgrade", "").lower() != "websocket":
            self._refuse("the server's 101 reply does not upgrade to websocket")
            return False
        if headers.get("sec-websocket-accept") != accept_for(self._key):
            self._refuse("the server's Sec-WebSocket-Accept does not match the key")
            return False
        if headers.get("sec-websocket-extensions"):
            self._refuse(f"the server chose extensions none were offered: {headers['sec-websocket-extensions']!r}")
            return False
        self._open = True
        self.opened.set_result(None)
        return True

    def _refuse(self, message: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(WebSocketError(message))
        if self.transport is not None:
            self.transport.abort()

    # -- frames -------------------------------------------------------------------------------------

    def _frames(self) -> None:
        buf = self._buf
        if self.close_code is not None:  # closing: nothing more is delivered
            buf.clear()
            return
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            if b1 & 0x80:
                raise WebSocketError("the server sent a masked frame")
            if b0 & 0x70:
                raise WebSocketError("a frame with reserved bits set (no extension was agreed)")
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
            if opcode >= _CLOSE and (n > 125 or not fin):
                raise WebSocketError("a control frame that is fragmented or over 125 bytes")
            if self._part_len + n > self.max_size:
                self._fail(1009, f"a message over {self.max_size} bytes")
                return
            if len(buf) < at + n:
                return
            payload = bytes(buf[at:at + n])
            del buf[:at + n]
            if opcode >= _CLOSE:
                self._control(opcode, payload)
                if self.closed.done() or self.close_code is not None:
                    return
            else:
                self._data(opcode, fin, payload)

    def _data(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == _CONT:
            if not self._part_op:
                raise WebSocketError("a continuation frame with no message to continue")
        elif self._part_op:
            raise WebSocketError("a new message before the previous one's last fragment")
        elif opcode not in (_TEXT, _BINARY):
            raise WebSocketError(f"a frame of unknown opcode {opcode}")
        else:
            self._part_op = opcode
        self._parts.append(payload)
        self._part_len += len(payload)
        if not fin:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        text = self._part_op == _TEXT
        self._parts, self._part_op, self._part_len = [], 0, 0
        if text:
            try:
                message: bytes | str = data.decode()
            except UnicodeDecodeError:
                self._fail(1007, "a text message that is not UTF-8")
                return
        else:
            message = data
        if self.on_message is not None:
            self.on_message(message)
        else:
            self.messages.append(message)
            self._wake()

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            self.write(_PONG, payload)
        elif opcode == _CLOSE:
            code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
            self.close_code, self.close_reason = code, payload[2:].decode("utf-8", "replace")
            if not self.close_sent:  # echo it, then the server closes the TCP connection
                self.write(_CLOSE, payload[:2])
                self.close_sent = True
            self._wake()
        elif opcode != _PONG:  # a pong needs nothing: no pings are sent
            raise WebSocketError(f"a control frame of unknown opcode {opcode}")

    def _fail(self, code: int, reason: str) -> None:
        """Protocol error: say why in a close frame, then drop the connection."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if not self.close_sent and self.transport is not None and not self.transport.is_closing():
            self.write(_CLOSE, struct.pack("!H", code) + reason.encode()[:120])
            self.close_sent = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def write(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(encode_frame(opcode, payload, os.urandom(4)))

    async def writable(self) -> None:
        if self._writable is not None and not self._writable.done():
            await self._writable


class WebSocket:
    """An open client websocket: `send`, `recv` or `listen`, `close`."""

    def __init__(self, protocol: _Protocol, close_timeout: float) -> None:
        self._p = protocol
        self.close_timeout = close_timeout

    @property
    def is_open(self) -> bool:
        p = self._p
        return not p.closed.done() and p.close_code is None and not p.close_sent

    def _closed_error(self) -> WebSocketClosed:
        return WebSocketClosed(self._p.close_code, self._p.close_reason)

    async def send(self, message: str | bytes) -> None:
        """Send one text (str) or binary (bytes) message; waits while the transport's buffer is full."""
        if not self.is_open:
            raise self._closed_error()
        p = self._p
        if isinstance(message, str):
            p.write(_TEXT, message.encode())
        else:
            p.write(_BINARY, bytes(message))
        await p.writable()

    async def recv(self) -> str | bytes:
        """The next message (text as str, binary as bytes); WebSocketClosed once the socket ends."""
        p = self._p
        if p.on_message is not None:
            raise RuntimeError("recv() on a socket that is being listened to")
        while not p.messages:
            if p.closed.done() or p.close_code is not None:
                raise self._closed_error()
            p.waiter = asyncio.get_running_loop().create_future()
            await p.waiter
        return p.messages.popleft()

    async def listen(self, on_message: Callable[[bytes | str], None]) -> None:
        """Hand every message to `on_message` as it is read (in the loop's protocol callback, so
        `on_message` must not block); returns when the socket ends. Messages already received
        come first."""
        p = self._p
        while p.messages:
            on_message(p.messages.popleft())
        p.on_message = on_message
        try:
            await asyncio.shield(p.closed)
        finally:
            p.on_message = None

    async def close(self, code: int = 1000) -> None:
        """The close handshake: send a close frame, wait up to `close_timeout` for the server to
        answer and drop the connection, then drop it ourselves."""
        p = self._p
        if p.transport is None:
            return
        if not p.close_sent and not p.transport.is_closing():
            p.write(_CLOSE, struct.pack("!H", code))
            p.close_sent = True
        if not p.closed.done():
            try:
                await asyncio.wait_for(asyncio.shield(p.closed), self.close_timeout)
            except TimeoutError:
                p.transport.abort()


async def connect(url: str, *, open_timeout: float = 10.0, close_timeout: float = 1.0,
                  max_size: int = MAX_MESSAGE, ssl_context: ssl.SSLContext | None = None,
                  unix_socket: str = "") -> WebSocket:
    """Open a websocket to a ws:// or wss:// `url`; WebSocketError if the server refuses the
    upgrade, OSError/TimeoutError if it cannot be reached. With `unix_socket` the connection goes
    to that Unix socket (the url still gives the Host header and path; ws:// only)."""
    parts = urlsplit(url)
    hostname = parts.hostname
    if parts.scheme not in ("ws", "wss") or not hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host_header = hostname if parts.port is None else f"{hostname}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    kw: dict[str, Any] = {}
    if secure:
        kw = {"ssl": ssl_context or ssl.create_default_context(), "server_hostname": hostname}

    if unix_socket and secure:
        raise ValueError("a websocket through a Unix socket is ws://, not wss://")

    async def opening() -> WebSocket:
        def factory() -> _Protocol:
            return _Protocol(host_header, path, max_size)
        if unix_socket:
            transport, protocol = await loop.create_unix_connection(factory, unix_socket)
        else:
            transport, protocol = await loop.create_connection(factory, hostname, port, **kw)
        try:
            await protocol.opened
        except BaseException:
            transport.abort()
            raise
        return WebSocket(protocol, close_timeout)  # asyncio and uvloop set TCP_NODELAY already

    return await asyncio.wait_for(opening(), open_timeout)
