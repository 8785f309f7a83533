"""uvicorn's HTTP protocol for the gateway: the invocation routes without ASGI, and each
response in one write().

`GET /function/{name}` and `POST /function/{name}` are nearly all of a gateway's traffic. Through
ASGI each one cost a scope dict, a RequestResponseCycle, receive/send message dicts and uvicorn's,
Starlette's and FastAPI's middleware layers around `fastpath.FastCalls`: 7–15 % of the
gateway's CPU per call. `GatewayHttpProtocol` recognises these two routes when the headers are
parsed and answers them as a `_CallCycle` with `fastpath.answer`, the same code (and so the same
statuses, error bodies and auth) as `FastCalls`. Everything else (other routes, /docs, a name
FastAPI refuses, a protocol upgrade) goes through the ASGI app as before. The cycle plugs into
uvicorn's own per-connection bookkeeping (pipelined requests wait their turn, keep-alive timer,
graceful shutdown), so HTTP behaviour stays uvicorn's.

uvicorn writes a response's head when the app sends `http.response.start` and its body on
`http.response.body`: two send() calls, two TCP segments, and a client that wakes up for the head,
finds no body and sleeps again until the second one arrives. On loopback each send() also runs
the receiver's side of TCP in the sender's time. `_TurnBuffered` keeps what is written during one
turn of the event loop and sends it together at the end of that turn; everything else goes to the
real transport.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .fastpath import answer, is_call

__all__ = ["GatewayHttpProtocol"]


class _TurnBuffered:
    """A transport whose writes within one loop turn leave as a single write."""

    __slots__ = ("_loop", "_pending", "_real")

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._real = real
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._real.is_closing():
            self._real.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:  # what was written before close() still goes out first
        self.flush()
        self._real.close()

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, get_extra_info, ...
        return getattr(self._real, name)


class _CallCycle:
    """One GET/POST /function/{name} exchange, in the shape uvicorn's protocol expects of a
    request cycle: it reads `response_complete`, `keep_alive` and `message_event`, and starts
    `run_asgi(app)` as a task when the request's turn comes."""

    __slots__ = ("body", "complete", "disconnected", "headers", "keep_alive", "limit", "message_event", "method",
                 "name", "path", "proto", "query", "refused", "response_complete", "size", "state")

    def __init__(self, proto: GatewayHttpProtocol, state: Any, method: str, path: str, name: str, query: bytes,
                 headers: dict[bytes, bytes], keep_alive: bool, limit: int) -> None:
        self.proto = proto
        self.state = state
        self.method = method
        self.path = path
        self.name = name
        self.query = query
        self.headers = headers
        self.limit = limit
        declared = headers.get(b"content-length", b"")
        # Refused from its declared length: its body is never read, so the connection ends with it.
        self.refused = declared.isdigit() and int(declared) > limit
        self.keep_alive = keep_alive and not self.refused
        self.body: list[bytes] = []
        self.size = 0
        self.complete = False
        self.disconnected = False
        self.response_complete = False
        self.message_event = asyncio.Event()

    def feed(self, chunk: bytes) -> None:
        if self.method != "POST" or self.response_complete or self.size > self.limit:
            return
        # Kept only up to the first chunk past the limit: enough for read_json's 413, no more.
        self.size += len(chunk)
        self.body.append(chunk)
        if self.size > self.limit:
            self.keep_alive = False  # the unread rest of a refused body ends the connection
            self.message_event.set()

    def finish(self) -> None:
        self.complete = True
        self.message_event.set()

    def lost(self) -> None:
        self.disconnected = True
        self.message_event.set()

    async def run_asgi(self, app: Any) -> None:
        self.proto.call_running = self
        body: AsyncIterator[bytes] | None = None
        if self.method == "POST":
            if not (self.refused or self.complete or self.size > self.limit):
                await self.message_event.wait()
            body = _chunks(self.body)
        if self.disconnected:
            return
        status, headers, content = await answer(self.state, self.method, self.path, self.name, self.query,
                                                self.headers, body)
        if not self.disconnected:
            self._respond(status, headers, content)

    def _respond(self, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        proto = self.proto
        parts = [STATUS_LINE[status]]
        for name, value in proto.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", content]
        transport = proto.transport
        transport.write(b"".join(parts))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            transport.close()
        proto.on_response_complete()


async def _chunks(body: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in body:
        yield chunk


def _gateway_state(app: Any) -> Any:
    """The gateway app's `state` under uvicorn's wrappers (ProxyHeadersMiddleware …), or None."""
    for _ in range(8):
        state = getattr(app, "state", None)
        if state is not None and getattr(state, "gateway", None) is not None:
            return state
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class GatewayHttpProtocol(HttpToolsProtocol):
    """`uvicorn.run(..., http=GatewayHttpProtocol)`: see the module docstring."""

    call_running: _CallCycle | None = None  # the call being answered (pipelining: not the newest)
    gateway_state: Any = None  # the gateway app's state, None under any other app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_TurnBuffered(transport, self.loop))  # type: ignore[arg-type]
        self.gateway_state = _gateway_state(self.app)  # once per connection, not per request

    def on_headers_complete(self) -> None:
        cycle = self._call_cycle()
        if cycle is None:
            super().on_headers_complete()
            return
        if cycle.method == "POST" and self.expect_100_continue and not cycle.refused:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, self.app)  # type: ignore[arg-type]
        else:  # a pipelined request waits for the one before it, as in uvicorn
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))  # type: ignore[arg-type]

    def _call_cycle(self) -> _CallCycle | None:
        """A _CallCycle when this request is GET/POST /function/{name} and the app is ours."""
        parser = self.parser
        method = parser.get_method()
        if method not in (b"GET", b"POST") or parser.should_upgrade() or self.limit_concurrency is not None:
            return None
        state = self.gateway_state
        if state is None:
            return None
        try:
            url = httptools.parse_url(self.url)
            path = url.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None  # uvicorn's own handling (and error) for it
        if "%" in path:
            path = urllib.parse.unquote(path)
        path = self.root_path + path
        name = is_call(method.decode("ascii"), path)
        if name is None:
            return None
        headers: dict[bytes, bytes] = {}
        for k, v in self.headers:
            headers.setdefault(k, v)  # the first of a repeated header, as Starlette's headers.get()
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        return _CallCycle(self, state, method.decode("ascii"), path, name, url.query or b"", headers, keep_alive,
                          state.gateway.settings.max_body)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, _CallCycle):
            cycle.feed(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, _CallCycle):
            cycle.finish()
        else:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        cycles = {self.cycle, self.call_running}
        super().connection_lost(exc)
        for cycle in cycles:
            if isinstance(cycle, _CallCycle):
                cycle.lost()
