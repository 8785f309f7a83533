"""The server's websocket protocol (RFC 6455) for /pubsub, plugged into uvicorn as its `ws` class.

Why not uvicorn's own (websockets' sans-I/O parser): at concurrency 1 its generator parser, its
event objects, the ASGI queue and a pause/resume of reading around every message (two epoll
changes per frame) were ~10 % of the server's time per call. Here a client frame is parsed in
`data_received` and queued for the app's `receive()`, and a frame out is one header and one write.
It is a complete ASGI websocket server for one app, ours: text and binary messages (fragmented or
not), ping/pong, the close handshake both ways, the size limit (`ws_max_size`), graceful shutdown
(close code 1012) and keep-alive pings (`ws_ping_interval`/`ws_ping_timeout`); no extensions
(compression) and no subprotocols, which /pubsub never used.

Frames out still go through the app's ASGI `send` from pubsub's writer task, one loop turn after
the commit that made them: writing them from the commit's callback instead cost ~15 % of the
throughput at 64 connections (the gateway then got its ends in more, smaller reads).

gateway/wsclient.py is the client side's twin; this package imports nothing of ours, so the two
do not share code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from collections import deque
from typing import Any, cast
from urllib.parse import unquote

__all__ = ["WebSocketProtocol"]

log = logging.getLogger("uvicorn.error")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_BUFFERED = 64 * 1024 * 1024
"""A client that lets this much of our output pile up unread is dropped (it would only grow)."""


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (server frames are never masked)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def unmask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


def _valid_key(key: bytes) -> bool:
    """A Sec-WebSocket-Key is 16 bytes in base64 (RFC 6455 §4.1)."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:  # binascii.Error
        return False


def _status(code: int, reason: str, body: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class WebSocketProtocol(asyncio.Protocol):
    """uvicorn's `ws` protocol class: constructed on an upgrade request, given the connection's
    transport and the request's head through `data_received`."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.max_size: int = config.ws_max_size
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.scope: dict[str, Any] = {}
        self._buf = bytearray()
        self._head_done = False
        self.accepted = False
        self.close_sent = False
        self.disconnected = False
        self._events: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._parts: list[bytes] = []
        self._part_op = 0
        self._part_len = 0
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_due: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self._stop_timers()
        if not self.disconnected:
            self.disconnected = True
            self._event({"type": "websocket.disconnect", "code": 1006})
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: "service restart" to the client, then the app's disconnect."""
        if self.accepted and not self.close_sent:
            self._write(server_frame(_CLOSE, struct.pack("!H", 1012)))
            self.close_sent = True
        elif not self.accepted:
            self._write(_status(503, "Service Unavailable"))
        if not self.disconnected:
            self.disconnected = True
            self._event({"type": "websocket.disconnect", "code": 1012})
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._head_done:
            self._handshake()
            return
        if self.accepted and not self.disconnected:
            self._frames()

    # -- the upgrade --------------------------------------------------------------------------------

    def _handshake(self) -> None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return  # uvicorn hands over the whole head; the rest of a split one is on its way
        head = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[:end + 4]
        self._head_done = True
        method, _, rest = head[0].partition(b" ")
        target = rest.rpartition(b" ")[0]
        headers: list[tuple[bytes, bytes]] = []
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        values = dict(headers)
        key = values.get(b"sec-websocket-key", b"")
        if (method != b"GET" or b"websocket" not in values.get(b"upgrade", b"").lower()
                or values.get(b"sec-websocket-version") != b"13" or not _valid_key(key)):
            self._refuse(400, "Bad Request", b"not a websocket upgrade request (RFC 6455 version 13)\n")
            return
        self._accept_value = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        raw_path, _, query = target.partition(b"?")
        server = self.transport.get_extra_info("sockname")
        client = self.transport.get_extra_info("peername")
        self.scope = {
            "type": "websocket", "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "server": tuple(server[:2]) if isinstance(server, tuple) else None,
            "client": tuple(client[:2]) if isinstance(client, tuple) else None,
            "peer": client,  # the transport's peername as is: a str on a Unix socket (client is None there)
            "root_path": self.root_path, "path": self.root_path + unquote(raw_path.decode("latin-1")),
            "raw_path": self.root_path.encode("ascii") + raw_path, "query_string": query,
            "headers": headers, "subprotocols": [], "state": self.app_state.copy(),
            "extensions": {},
        }
        self._event({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_app())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _refuse(self, code: int, reason: str, body: bytes = b"") -> None:
        self.close_sent = True
        self.disconnected = True
        self._write(_status(code, reason, body))
        self.transport.close()

    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except BaseException:
            log.exception("Exception in ASGI application")
            if not self.accepted:
                self._refuse(500, "Internal Server Error")
            elif not self.close_sent:
                self._close(1011)
            return
        if not self.accepted and not self.close_sent:
            self._refuse(500, "Internal Server Error")  # the app returned without a word
        elif not self.close_sent and not self.disconnected:
            self._close(1000)

    # -- ASGI ---------------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while not self._events:
            self._waiter = self.loop.create_future()
            await self._waiter
        return self._events.popleft()

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if not self.accepted and not self.close_sent:
            if kind == "websocket.accept":
                self.accepted = True
                self._write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                            b"sec-websocket-accept: " + self._accept_value + b"\r\n\r\n")
                if self._buf:
                    self._frames()  # frames sent right behind the request
                self._start_pings()
            elif kind == "websocket.close":
                self._refuse(403, "Forbidden")
            else:
                raise RuntimeError(f"expected websocket.accept or websocket.close, got {kind!r}")
            return
        if self.close_sent or self.disconnected:
            raise ConnectionError("the websocket is closed")  # what uvicorn's ClientDisconnected is to apps
        if kind == "websocket.send":
            text = message.get("text")
            if text is not None:
                self._write(server_frame(_TEXT, text.encode()))
            else:
                self._write(server_frame(_BINARY, bytes(message.get("bytes") or b"")))
            if self._writable is not None and not self._writable.done():
                await self._writable
        elif kind == "websocket.close":
            self._close(int(message.get("code", 1000)), str(message.get("reason") or ""))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an open websocket")

    # -- frames -------------------------------------------------------------------------------------

    def _frames(self) -> None:
        buf = self._buf
        while len(buf) >= 2 and not self.disconnected:
            b0, b1 = buf[0], buf[1]
            if not b1 & 0x80:
                self._fail(1002, "client frames must be masked")
                return
            if b0 & 0x70:
                self._fail(1002, "reserved bits set")
                return
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
                self._fail(1002, "fragmented or oversized control frame")
                return
            if opcode < _CLOSE and self._part_len + n > self.max_size:
                self._fail(1009, f"message over {self.max_size} bytes")
                return
            if len(buf) < at + 4 + n:
                return
            payload = unmask(bytes(buf[at + 4:at + 4 + n]), bytes(buf[at:at + 4]))
            del buf[:at + 4 + n]
            if opcode >= _CLOSE:
                self._control(opcode, payload)
            else:
                self._data(opcode, fin, payload)

    def _data(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == _CONT:
            if not self._part_op:
                self._fail(1002, "continuation frame without a message")
                return
        elif self._part_op:
            self._fail(1002, "new message before the last fragment of the previous one")
            return
        elif opcode not in (_TEXT, _BINARY):
            self._fail(1002, f"unknown opcode {opcode}")
            return
        else:
            self._part_op = opcode
        self._parts.append(payload)
        self._part_len += len(payload)
        if not fin:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        text = self._part_op == _TEXT
        self._parts, self._part_op, self._part_len = [], 0, 0
        if self.close_sent:
            return  # past our close: only the peer's close frame matters now
        if text:
            try:
                self._event({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError:
                self._fail(1007, "text message is not UTF-8")
        else:
            self._event({"type": "websocket.receive", "bytes": data})

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == _PING:
            if not self.close_sent:
                self._write(server_frame(_PONG, payload))
        elif opcode == _PONG:
            if self._pong_due is not None:
                self._pong_due.cancel()
                self._pong_due = None
        elif opcode == _CLOSE:
            code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
            if not self.close_sent:  # the client's close: answer it; the client drops the TCP connection
                self._write(server_frame(_CLOSE, payload[:2]))
                self.close_sent = True
            self.disconnected = True
            self._event({"type": "websocket.disconnect", "code": code})
            self.transport.close()
        else:
            self._fail(1002, f"unknown control opcode {opcode}")

    def _close(self, code: int, reason: str = "") -> None:
        """Our close: send the frame, then give the client close_timeout to answer and hang up."""
        self.close_sent = True
        self._write(server_frame(_CLOSE, struct.pack("!H", code) + reason.encode()[:123]))
        self._stop_timers()
        self._close_timer = self.loop.call_later(10.0, self.transport.close)

    def _fail(self, code: int, reason: str) -> None:
        log.info("websocket protocol error from %s: %s", self.scope.get("client"), reason)
        if not self.close_sent:
            self._write(server_frame(_CLOSE, struct.pack("!H", code) + reason.encode()[:123]))
            self.close_sent = True
        if not self.disconnected:
            self.disconnected = True
            self._event({"type": "websocket.disconnect", "code": code})
        self.transport.close()

    def _event(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(data)
        if self.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("websocket client %s reads too slowly: dropping it", self.scope.get("client"))
            self.transport.abort()

    # -- keep-alive ---------------------------------------------------------------------------------

    def _start_pings(self) -> None:
        if self.ping_interval:
            self._ping_timer = self.loop.call_later(self.ping_interval, self._ping)

    def _ping(self) -> None:
        if self.close_sent or self.disconnected:
            return
        self._write(server_frame(_PING, b"colonies"))
        if self.ping_timeout and self._pong_due is None:
            self._pong_due = self.loop.call_later(self.ping_timeout, self._fail, 1011, "keepalive ping timeout")
        self._start_pings()

    def _stop_timers(self) -> None:
        for timer in (self._ping_timer, self._pong_due, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_due = self._close_timer = None
