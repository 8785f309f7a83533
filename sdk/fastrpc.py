"""Lean RPC senders for hot paths: SDK `Call`s over kept-alive HTTP/1.1 connections, no httpx.

`FastRPC` (blocking sockets, thread-safe) and `AsyncFastRPC` (asyncio streams) are twins over the
pure helpers below; both sign with `build_envelope` and parse with `parse_reply`, exactly like
`Colonies`/`AsyncColonies`. Why they exist: on the 2-core benchmark machine one httpx request cost
~1 ms of client CPU against ~0.15 ms for the same exchange on raw sockets, and every invocation
through the gateway makes five RPCs (submit, assign, close, and the gateway's and the executor's
side of the result). They speak only `POST /api`; files, websockets and everything else stay with
the full clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections import deque
from typing import IO, Any, TypeVar

from .aio import within
from .call import Call
from .client_base import call_result, exchange_timeout
from .envelope import build_envelope, parse_reply
from .errors import ColoniesConnectionError, ColoniesError, ColoniesTimeoutError, ForbiddenError
from .messages import bind_connection, connection_nonce

__all__ = ["AsyncFastRPC", "FastRPC"]

T = TypeVar("T")
log = logging.getLogger(__name__)

# Below uvicorn's default keep-alive timeout (5 s): an idle connection is dropped before the
# server could close it under us.
IDLE_LIMIT = 4.0
MAX_BODY = 64 * 1024 * 1024
NOT_RESENT = frozenset({"submitfuncspecmsg", "submitworkflowspecmsg", "addlogmsg"})
"""Not sent again on a new connection when a reused one was closed under us: the server may
have acted on them (a submit would queue a second process, a log line would appear twice).
A submission with an idempotency key is resent: the server answers it with the first's process."""


def _resendable(call: Call[Any]) -> bool:
    return call.msgtype not in NOT_RESENT or bool(call.msg.get("idempotencykey"))


class _StaleConnection(Exception):
    """The server closed a reused connection before answering (nothing was processed)."""


# -- pure helpers -----------------------------------------------------------------------------------

def _where(host: str, port: int, unix_socket: str) -> str:
    return f"unix:{unix_socket}" if unix_socket else f"{host}:{port}"


def _request_head(host: str, port: int) -> bytes:
    return (f"POST /api HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Connection: keep-alive\r\nContent-Length: ").encode()


def _request(head: bytes, call: Call[Any], prvkey: str | None, session: str | None = None) -> bytes:
    body = build_envelope(call.msg, call.prvkey or prvkey, session).encode()
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


_SESSION_REFUSED = "Failed to recover ID from signature"
"""How the server refuses a session marker it does not know on this connection (before acting on
the message, so sending it again signed is safe)."""


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and lower-cased headers of an HTTP/1.x reply head (status line included)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x reply: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def _content_length(headers: dict[str, str]) -> int:
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError(f"reply of {length} bytes is too large")
    return length


def _is_chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _closes(headers: dict[str, str]) -> bool:
    return headers.get("connection", "").lower() == "close"


def _chunk_size(line: bytes, total: int) -> int:
    size = int(line.split(b";")[0].strip(), 16)
    if total + size > MAX_BODY:
        raise ValueError("chunked reply is too large")
    return size


# -- blocking ---------------------------------------------------------------------------------------

class _SyncConn:
    __slots__ = ("closed", "rfile", "session", "sock", "timeout", "used")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.timeout = sock.gettimeout()
        self.rfile: IO[bytes] = sock.makefile("rb")
        self.used = time.monotonic()
        self.closed = False
        self.session: tuple[str, str] | None = None  # (key, token) once bound (the "sessions" extension)

    def usable(self) -> bool:
        return not self.closed and time.monotonic() - self.used < IDLE_LIMIT

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            self.rfile.close()
        with contextlib.suppress(Exception):
            self.sock.close()


class FastRPC:
    """Sends SDK Calls to POST /api from any thread, over a pool of kept-alive connections
    (one per concurrently sending thread).

    With `sessions` on (for a server that names "sessions" among versionmsg's extensions) each new
    connection is first bound to the identity of the first call sent on it (docs/SERVER.md,
    "Connection sessions"): our server grants that to clients on the same host, and then the
    calls with that key go out on that connection with the session marker instead of a signature
    (~0.1 ms less per call for the client and the server together). When the server refuses
    (another host, `--no-sessions`), `sessions` turns off and every call is signed.
    """

    def __init__(self, host: str, port: int, tls: bool, prvkey: str, *, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None, sessions: bool = False, unix_socket: str = "") -> None:
        self.host = host
        self.port = int(port)
        self.prvkey = prvkey
        self.sessions = sessions  # turned off for good when the server refuses one
        self.timeout = timeout
        self.unix_socket = unix_socket  # connect here instead of host:port (no TLS: it stays on this host)
        self.where = _where(host, self.port, unix_socket)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls and not unix_socket else None
        self._idle: deque[_SyncConn] = deque()
        self._lock = threading.Lock()
        self._head = _request_head(host, self.port)

    @classmethod
    def for_client(cls, client: Any) -> FastRPC:
        """A sender to the same server, with the same key, TLS settings and timeout as `client`
        (a `Colonies` or `AsyncColonies`)."""
        return cls(client.host, client.port, client.tls, client.prvkey, timeout=client.timeout,
                   ssl_context=client.ssl_context, unix_socket=client.unix_socket)

    def send(self, call: Call[T]) -> T:
        """Sign, send and parse one call; raises the same typed errors as `Colonies`."""
        timeout = exchange_timeout(call, self.timeout)
        key = call.prvkey or self.prvkey
        signed: bytes | None = None
        for attempt in (1, 2):
            conn, reused = self._acquire()
            try:
                if not reused and self.sessions:
                    self._bind(conn, key, timeout)
                if conn.session is not None and conn.session[0] == key:  # a session stands for its key only
                    status, body = self._exchange(conn, _request(self._head, call, key, conn.session[1]),
                                                  reused, timeout)
                    if status == 403 and _session_refused(status, body):  # not acted on: sign it
                        conn.session = None
                        signed = signed or _request(self._head, call, self.prvkey)
                        status, body = self._exchange(conn, signed, False, timeout)
                else:
                    signed = signed or _request(self._head, call, self.prvkey)
                    status, body = self._exchange(conn, signed, reused, timeout)
            except _StaleConnection:
                conn.close()
                if attempt == 1 and _resendable(call):
                    continue
                raise ColoniesConnectionError("the server closed the connection before answering") from None
            except TimeoutError:  # socket.timeout is TimeoutError
                conn.close()
                raise ColoniesTimeoutError(f"no reply from {self.where} within {timeout:g} s") from None
            except BaseException as e:  # reset, garbage, interrupted: this connection is done
                conn.close()
                if isinstance(e, Exception):
                    raise ColoniesConnectionError(f"{self.where}: {type(e).__name__}: {e}") from None
                raise
            if not conn.closed:
                conn.used = time.monotonic()
                with self._lock:
                    self._idle.append(conn)
            return call_result(call, status, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the idle connections (connections in use close when their exchange ends)."""
        with self._lock:
            idle, self._idle = self._idle, deque()
        for conn in idle:
            conn.close()

    def _bind(self, conn: _SyncConn, key: str, timeout: float) -> None:
        """Bind a new connection to `key`'s identity; a refusal turns sessions off for this sender
        (connection failures propagate like any exchange's)."""
        try:
            ask = connection_nonce()
            nonce = call_result(ask, *self._exchange(conn, _request(self._head, ask, None), False, timeout))
            bind = bind_connection(nonce)
            token = call_result(bind, *self._exchange(conn, _request(self._head, bind, key), False, timeout))
            conn.session = (key, token)
        except (ColoniesError, ValueError) as e:  # refused, or a reply that is not one of ours
            self.sessions = False
            log.info("%s: connection sessions refused (%s); signing every message", self.where, e)

    def _acquire(self) -> tuple[_SyncConn, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None  # the most recently used
            if conn is None:
                break
            if conn.usable():
                return conn, True
            conn.close()
        try:
            if self.unix_socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(self.unix_socket)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
        except OSError as e:
            raise ColoniesConnectionError(f"cannot connect to {self.where}: {e}") from None
        return _SyncConn(sock), False

    @staticmethod
    def _exchange(conn: _SyncConn, request: bytes, reused: bool, timeout: float) -> tuple[int, bytes]:
        if conn.timeout != timeout:  # settimeout is a syscall (ioctl): skip it while the timeout stays
            conn.sock.settimeout(timeout)
            conn.timeout = timeout
        rfile = conn.rfile
        try:
            conn.sock.sendall(request)
            first = rfile.readline(65537)
        except (ConnectionResetError, BrokenPipeError):
            if reused:  # closed by the server while idle, before it read this request
                raise _StaleConnection() from None
            raise
        if not first:
            if reused:
                raise _StaleConnection()
            raise ConnectionError("the server closed the connection before answering")
        lines = [first]
        while True:
            line = rfile.readline(65537)
            if not line:
                raise ConnectionError("the server closed the connection mid-reply")
            if line in (b"\r\n", b"\n"):
                break
            lines.append(line)
            if len(lines) > 100:
                raise ValueError("too many reply headers")
        status, headers = _parse_head(b"\r\n".join(line.rstrip(b"\r\n") for line in lines))
        if _is_chunked(headers):
            chunks: list[bytes] = []
            total = 0
            while True:
                size = _chunk_size(rfile.readline(1024), total)
                if size == 0:
                    rfile.readline(1024)
                    break
                total += size
                chunks.append(_read_exactly(rfile, size))
                _read_exactly(rfile, 2)
            body = b"".join(chunks)
        else:
            body = _read_exactly(rfile, _content_length(headers))
        if _closes(headers):
            conn.close()
        return status, body


def _session_refused(status: int, body: bytes) -> bool:
    """A 403 that says the session marker was not taken (rather than the signer being refused)."""
    try:
        parse_reply(status, body)
    except ForbiddenError as e:
        return e.message.startswith(_SESSION_REFUSED)
    except ColoniesError:
        return False
    return False


def _read_exactly(rfile: IO[bytes], n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise ConnectionError("the server closed the connection mid-reply")
    return data


# -- asyncio ----------------------------------------------------------------------------------------

class _AsyncConn:
    __slots__ = ("reader", "used", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = time.monotonic()

    def usable(self) -> bool:
        return (not self.reader.at_eof() and not self.writer.is_closing()
                and time.monotonic() - self.used < IDLE_LIMIT)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class AsyncFastRPC:
    """The asyncio twin of `FastRPC`, with at most `max_connections` exchanges at a time."""

    def __init__(self, host: str, port: int, tls: bool, prvkey: str, *, timeout: float = 10.0,
                 max_connections: int = 8, ssl_context: ssl.SSLContext | None = None, unix_socket: str = "") -> None:
        self.host = host
        self.port = int(port)
        self.prvkey = prvkey
        self.timeout = timeout
        self.unix_socket = unix_socket
        self.where = _where(host, self.port, unix_socket)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls and not unix_socket else None
        self._idle: deque[_AsyncConn] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._head = _request_head(host, self.port)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.popleft().close()

    async def send(self, call: Call[T]) -> T:
        """Sign, send and parse one call; raises the same typed errors as `AsyncColonies`."""
        request = _request(self._head, call, self.prvkey)
        timeout = exchange_timeout(call, self.timeout)
        async with self._slots:
            for attempt in (1, 2):
                conn, reused = await self._acquire()
                try:
                    status, payload = await within(self._exchange(conn, request, reused), timeout)
                except _StaleConnection:
                    conn.close()
                    if attempt == 1 and _resendable(call):
                        continue
                    raise ColoniesConnectionError("the server closed the connection before answering") from None
                except asyncio.TimeoutError:
                    conn.close()
                    raise ColoniesTimeoutError(f"no reply from {self.where} within {timeout:g} s") \
                        from None
                except Exception as e:  # reset, garbage, oversized headers: this connection is done
                    conn.close()
                    raise ColoniesConnectionError(f"{self.where}: {type(e).__name__}: {e}") from None
                except BaseException:  # cancelled mid-exchange: the reply would confuse the next user
                    conn.close()
                    raise
                conn.used = time.monotonic()
                self._idle.append(conn)
                break
        return call_result(call, status, payload)

    async def _acquire(self) -> tuple[_AsyncConn, bool]:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be stale
            if conn.usable():
                return conn, True
            conn.close()
        try:
            opening = (asyncio.open_unix_connection(self.unix_socket) if self.unix_socket
                       else asyncio.open_connection(self.host, self.port, ssl=self._ssl))
            reader, writer = await asyncio.wait_for(opening, self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise ColoniesConnectionError(f"cannot connect to {self.where}: {e}") from None
        return _AsyncConn(reader, writer), False

    @staticmethod
    async def _exchange(conn: _AsyncConn, request: bytes, reused: bool) -> tuple[int, bytes]:
        conn.writer.write(request)
        await conn.writer.drain()
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if reused and not e.partial:
                raise _StaleConnection() from None
            raise
        status, headers = _parse_head(head)
        if _is_chunked(headers):
            chunks: list[bytes] = []
            total = 0
            while True:
                size = _chunk_size(await conn.reader.readuntil(b"\r\n"), total)
                if size == 0:
                    await conn.reader.readuntil(b"\r\n")
                    break
                total += size
                chunks.append(await conn.reader.readexactly(size))
                await conn.reader.readexactly(2)
            body = b"".join(chunks)
        else:
            body = await conn.reader.readexactly(_content_length(headers))
        if _closes(headers):
            conn.writer.close()
        return status, body
