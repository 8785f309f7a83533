"""The gateway's uvicorn protocol: writes of one event-loop turn leave as one write; the call
routes answered from the HTTP parser exactly as FastAPI's routes answer them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from gateway.fastpath import FastCalls
from gateway.serving import GatewayHttpProtocol, _TurnBuffered

from .conftest import RealExecutor, runs
from .test_fastpath import REQUESTS, _client, _comparable, _fast_calls


async def test_writes_of_one_turn_leave_together_and_close_sends_them_first() -> None:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    try:
        buffered = _TurnBuffered(transport, loop)  # type: ignore[arg-type]
        buffered.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        buffered.write(b"{}")
        assert buffered.get_write_buffer_size() == 40
        try:
            early = peer.recv(1024)
        except BlockingIOError:
            early = b""
        assert early == b""  # nothing sent before the turn ends
        await asyncio.sleep(0)
        assert peer.recv(1024) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"

        buffered.write(b"last words")
        buffered.close()
        await asyncio.sleep(0.05)
        assert peer.recv(1024) == b"last words"
        assert buffered.is_closing()  # the rest goes to the real transport
    finally:
        transport.close()
        peer.close()


# -- GET/POST /function/{name} answered from the HTTP parser, without ASGI ------------------------

@asynccontextmanager
async def _served(app: Any) -> AsyncIterator[int]:
    """`app` served by uvicorn with GatewayHttpProtocol in this event loop; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=GatewayHttpProtocol))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the gateway did not start"
            await asyncio.sleep(0.005)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_the_protocol_answers_calls_like_fastapi_without_asgi(make_app: Any, executor: RealExecutor) -> None:
    served = make_app(max_body=2048)
    plain = make_app(max_body=2048)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not FastCalls]
    async with _served(served) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as f, \
            _client(plain) as p:
        for method, path, kw in REQUESTS:
            if any(not v.strip() for v in kw.get("headers", {}).values()):
                continue  # httpx will not send a blank header value over a socket (ASGI only)
            status, body, names = _comparable(await f.request(method, path, **kw))
            # uvicorn's own headers on every response it serves; `connection: close` after a refused
            # body (the test below), whose unread rest is not worth reading
            a = status, body, names - {"server", "date", "connection"}
            b = _comparable(await p.request(method, path, **kw))
            assert a == b, f"{method} {path[:60]}: protocol {a} != FastAPI {b}"
        # Only the long name, the PUT and the HEAD reached the ASGI app; FastCalls answered none.
        assert _fast_calls(served).served == 0
        assert "faas_gateway_invocations_total{" in served.state.gateway.metrics.render()  # counted as ever


async def _exchange(port: int, data: bytes, until: int, timeout: float = 20) -> tuple[bytes, bool]:
    """Send `data` on a new connection; read until `until` responses arrived (and whether the
    server closed the connection after them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    got = b""
    closed = False
    try:
        async with asyncio.timeout(timeout):
            while got.count(b"HTTP/1.") - got.count(b"HTTP/1.1 100 Continue") < until or not got.endswith(b"}"):
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
            if not closed:
                try:
                    async with asyncio.timeout(0.3):
                        closed = await reader.read(1) == b""
                except TimeoutError:
                    closed = False
    finally:
        writer.close()
    return got, closed


async def test_pipelined_keep_alive_100_continue_chunked_and_http_1_0_on_the_protocol_path(
        make_app: Any, executor: RealExecutor) -> None:
    async with _served(make_app(max_body=2048)) as port:
        # Two pipelined GETs in one write: answered in order, the connection kept.
        got, closed = await _exchange(port, b"GET /function/convert?celsius=0 HTTP/1.1\r\nHost: x\r\n\r\n"
                                            b"GET /function/convert?celsius=100 HTTP/1.1\r\nHost: x\r\n\r\n", 2)
        assert got.count(b"HTTP/1.1 200 OK") == 2 and not closed
        assert got.index(b'"result":32.0') < got.index(b'"result":212.0')
        # A POST that asks before sending its body gets 100 Continue, then its answer.
        body = b'{"celsius": 10}'
        got, _ = await _exchange(port, b"POST /function/convert HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                       % (len(body), body), 1)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and b'"result":50.0' in got
        # A chunked body.
        got, _ = await _exchange(port, b"POST /function/convert HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                       b"\r\n5\r\n{\"cel\r\na\r\nsius\": 20}\r\n0\r\n\r\n", 1)
        assert b"HTTP/1.1 200 OK" in got and b'"result":68.0' in got
        # HTTP/1.0: answered, then closed.
        got, closed = await _exchange(port, b"GET /function/convert?celsius=5 HTTP/1.0\r\n\r\n", 1)
        assert b"200 OK" in got and b"connection: close" in got.lower() and closed


async def test_100_continue_comes_before_the_body_is_sent_also_on_a_closing_connection(
        make_app: Any, executor: RealExecutor) -> None:
    body = b'{"celsius": 30}'
    async with _served(make_app(max_body=2048)) as port:
        for connection in (b"keep-alive", b"close"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"POST /function/convert HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                             b"Connection: %s\r\nContent-Length: %d\r\n\r\n" % (connection, len(body)))
                async with asyncio.timeout(10):  # the client waits for it before sending the body
                    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
                    writer.write(body)
                    answer = await reader.read(65536)
                assert answer.startswith(b"HTTP/1.1 200 OK") and b'"result":86.0' in answer, (connection, answer)
            finally:
                writer.close()


async def test_a_body_over_the_limit_is_refused_at_once_and_the_connection_closed(
        make_app: Any, executor: RealExecutor) -> None:
    async with _served(make_app(max_body=64)) as port:
        # Declared too large: 413 before any of the body is read (none is sent here).
        got, closed = await _exchange(port, b"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                                            b"Expect: 100-continue\r\n\r\n", 1)
        assert got.startswith(b"HTTP/1.1 413") and b"100 Continue" not in got and closed
        assert b"exceeds the limit of 64 bytes" in got
        # Chunked past the limit: 413 too, and the connection goes (its body was not read to the end).
        got, closed = await _exchange(port, b"POST /function/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                            b"\r\n50\r\n" + b"x" * 80 + b"\r\n", 1)
        assert got.startswith(b"HTTP/1.1 413") and closed


async def test_head_gets_no_body_on_the_wire_and_never_runs_a_function(make_app: Any, deployed: Any,
                                                                       executor: RealExecutor) -> None:
    async with _served(make_app()) as port:
        # HEAD then GET on one connection: the HEAD's head is followed at once by the GET's answer.
        got, closed = await _exchange(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 2)
        head, _, rest = got.partition(b"\r\n\r\n")
        get_head, _, get_body = rest.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and get_head.startswith(b"HTTP/1.1 200") and not closed
        assert b"content-type: application/json" in head.lower()
        assert f"content-length: {len(get_body)}".encode() in head.lower()  # the GET's length, no body
        # HEAD /function/{name}: a 405 naming GET and POST; the GET after it runs the function.
        got, closed = await _exchange(port, b"HEAD /function/convert?celsius=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                            b"GET /function/convert?celsius=1 HTTP/1.1\r\nHost: x\r\n\r\n", 2)
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405") and not closed
        assert b"allow: GET, POST" in head and b"content-length: 0" in head and b"content-type" not in head
        assert rest.startswith(b"HTTP/1.1 200") and b'"result":33.8' in rest
    assert await asyncio.to_thread(runs, deployed, "convert") == 1


async def test_an_app_that_is_not_the_gateway_still_gets_every_request_over_asgi() -> None:
    """The parser-level path needs the gateway app's state; under any other app it steps aside."""
    from fastapi import FastAPI

    other = FastAPI()

    @other.get("/function/{name}")
    async def route(name: str) -> dict[str, str]:
        return {"answered by": "asgi", "name": name}

    async with _served(other) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.get("/function/convert?celsius=1")
        assert r.status_code == 200 and r.json() == {"answered by": "asgi", "name": "convert"}
