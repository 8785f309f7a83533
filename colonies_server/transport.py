"""The server's HTTP protocol: uvicorn's httptools protocol with POST /api served without ASGI.

Every RPC is one small POST /api. Through ASGI each costs a scope dict, a RequestResponseCycle,
receive/send message dicts and two transport writes, more CPU than the RPC itself (a signed
submit is ~80 µs of dispatch). `ColoniesHttpProtocol` recognises `POST /api` when the headers
are parsed and runs it as an `_ApiCycle`: the body is collected in the parser callbacks, then one
task dispatches it and writes the reply in one `write()`. Everything else (`/health`, `/pubsub`
websocket upgrades, unknown routes, `/api?query`) goes through the ASGI app as before. The
`_ApiCycle` plugs into uvicorn's own per-connection bookkeeping (pipelined requests wait their
turn, keep-alive timer, graceful shutdown), so HTTP behaviour is uvicorn's.

`_CoalescingTransport` joins the writes made during one loop iteration (uvicorn writes the status
line + headers and the body separately); on loopback each send() also runs the receiver's TCP path.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .envelope import encode_error
from .rpc import dispatch, is_long_poll
from .sessions import FORWARDED, Session, is_local_peer
from .wsserver import WebSocketProtocol

if TYPE_CHECKING:
    import uvicorn

    from .app import ColoniesApp
    from .config import Settings

__all__ = ["ColoniesHttpProtocol", "bind_unix", "listen_sockets", "unlink_unix_socket", "uvicorn_config"]

_HEAD = b"content-type: text/plain; charset=utf-8\r\ncontent-length: "


class _CoalescingTransport:
    __slots__ = ("_buf", "_loop", "_scheduled", "_t")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._t = transport
        self._loop = loop
        self._buf: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._buf.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def writelines(self, chunks: Any) -> None:
        for c in chunks:
            self.write(c)

    def _flush(self) -> None:
        self._scheduled = False
        if self._buf:
            data = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
            self._buf.clear()
            if not self._t.is_closing():
                self._t.write(data)

    def write_now(self, data: bytes) -> None:
        """Write at once (after anything still buffered): a reply made in one piece needs no join."""
        if self._buf:
            self._flush()
        if not self._t.is_closing():
            self._t.write(data)

    def close(self) -> None:
        self._flush()
        self._t.close()

    def write_eof(self) -> None:
        self._flush()
        self._t.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._t.get_write_buffer_size() + sum(len(b) for b in self._buf)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class _ApiCycle:
    """One POST /api exchange, in the shape uvicorn's protocol expects of a request cycle.

    uvicorn reads `response_complete`, `keep_alive`, `disconnected` and `message_event`, and
    starts `run_asgi(app)` as a task when the request's turn comes.
    """

    __slots__ = ("body", "complete", "disconnected", "keep_alive", "limit", "long_poll", "message_event", "proto",
                 "response_complete", "size", "task", "too_large")

    def __init__(self, proto: ColoniesHttpProtocol, keep_alive: bool, limit: int, too_large: bool) -> None:
        self.proto = proto
        self.keep_alive = keep_alive and not too_large  # the unread rest of a refused body ends the connection
        self.limit = limit
        self.too_large = too_large
        self.body: list[bytes] = []
        self.size = 0
        self.complete = too_large
        self.disconnected = False
        self.response_complete = False
        self.message_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.long_poll = False
        if too_large:
            self.message_event.set()

    def feed(self, chunk: bytes) -> None:
        if self.too_large or self.response_complete:
            return
        self.size += len(chunk)
        if self.size > self.limit:  # answer 413 now, without buffering the rest
            self.too_large, self.complete, self.keep_alive = True, True, False
            self.body.clear()
            self.message_event.set()
        else:
            self.body.append(chunk)

    def finish(self) -> None:
        self.complete = True
        self.message_event.set()

    def lost(self) -> None:
        """The client is gone: a parked long-poll must not be handed a process nobody will run."""
        self.disconnected = True
        if self.task is not None and not self.response_complete and self.long_poll:
            self.task.cancel()

    async def run_asgi(self, app: ColoniesApp) -> None:
        self.task = asyncio.current_task()
        self.proto.api_running = self
        if not self.complete:
            await self.message_event.wait()
        if self.disconnected:
            return
        rt = app.runtime
        if self.too_large:
            status, out = 413, encode_error(413, f"request body larger than {self.limit} bytes")
        elif rt is None:
            status, out = 503, encode_error(503, "server is starting or stopping")
        else:
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            self.body = []
            self.long_poll = is_long_poll(body)
            try:
                status, out = await dispatch(rt, body, self.proto.session)
            except asyncio.CancelledError:  # the long-poll's caller disconnected
                return
            if self.disconnected:
                return
        self._respond(status, out)

    def _respond(self, status: int, out: bytes) -> None:
        proto = self.proto
        parts = [STATUS_LINE[status], _HEAD, str(len(out)).encode(), b"\r\n"]
        for name, value in proto.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", out]
        transport = proto.transport
        write = getattr(transport, "write_now", transport.write)
        write(b"".join(parts))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            transport.close()
        proto.on_response_complete()


class ColoniesHttpProtocol(HttpToolsProtocol):
    """See the module docstring. `app` must be the ColoniesApp itself (not wrapped by middleware)."""

    api_running: _ApiCycle | None = None  # the /api request being answered (pipelining: not the newest)
    session: Session  # this connection's session state (colonies_server.sessions)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.session = Session(is_local_peer(transport.get_extra_info("peername")))
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        parser = self.parser
        if self.url != b"/api" or parser.get_method() != b"POST" or parser.should_upgrade():
            super().on_headers_complete()
            return
        app: ColoniesApp = self.app  # type: ignore[assignment]
        limit = app.settings.body_limit
        too_large = False
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    too_large = int(value) > limit
                except ValueError:
                    too_large = True
            elif name in FORWARDED and self.session.local:
                self.session.forwarded()
        http_version = parser.get_http_version()
        cycle = _ApiCycle(self, http_version != "1.0" and parser.should_keep_alive(), limit, too_large)
        if self.expect_100_continue and not too_large:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, app)  # type: ignore[arg-type]
        else:  # a pipelined request waits for the one before it, as in uvicorn
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if isinstance(cycle, _ApiCycle):
            cycle.feed(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if isinstance(cycle, _ApiCycle):
            cycle.finish()
        else:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        cycles = {self.cycle, self.api_running}
        super().connection_lost(exc)
        for cycle in cycles:
            if isinstance(cycle, _ApiCycle):
                cycle.lost()


def uvicorn_config(app: ColoniesApp, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration `faas server start` runs with (tests and benches use it too)."""
    import uvicorn

    kw: dict[str, Any] = dict(host=settings.host, port=settings.port, lifespan="on", http=ColoniesHttpProtocol,
                              ws=WebSocketProtocol,
                              log_level="warning", access_log=False, backlog=4096, timeout_graceful_shutdown=5,
                              # No X-Forwarded-* rewriting, Server or Date headers: per-request work nobody reads.
                              proxy_headers=False, server_header=False, date_header=False)
    kw.update(overrides)
    return uvicorn.Config(app, **kw)


def listen_sockets(config: uvicorn.Config, settings: Settings) -> list[socket.socket] | None:
    """The listening sockets for `uvicorn.Server.run(sockets=...)`: None (uvicorn binds host:port
    itself) unless the server also listens on a Unix socket, then [TCP, Unix]."""
    if not settings.unix_socket:
        return None
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((config.host, config.port))
        tcp.listen(config.backlog)
        return [tcp, bind_unix(settings.unix_socket, config.backlog)]
    except OSError:
        tcp.close()
        raise


def bind_unix(path: str, backlog: int = 4096) -> socket.socket:
    """A listening Unix socket at `path`. A socket file left by a server that is gone is replaced;
    a live one, or any other file, is refused (OSError with a message naming the path).

    Mode 0666, as uvicorn's own `--uds`: any local user can reach the TCP port just as well, and
    every message still carries a signature or a session bound by one."""
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"cannot listen on {path}: the file exists and is not a socket")
        if _accepting(path):
            raise OSError(f"cannot listen on {path}: another server is listening on it")
        os.unlink(path)  # left behind by a server that did not stop cleanly
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {path}: {e.strerror or e}") from None
    return sock


def unlink_unix_socket(path: str) -> None:
    """Remove our socket file at shutdown, unless it is not a socket or someone else now listens on it."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode) and not _accepting(path):
            os.unlink(path)
    except OSError:
        pass


def _accepting(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True
