"""A submission whose answer is lost (the connection to the server drops after the server stored
it) is resent with the same idempotency key and runs once: the call still answers, nothing is
queued twice. A TCP proxy between gateway and server drops the answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.harness.server import ServerHandle

from .conftest import RealExecutor, runs


class AnswerDropper:
    """Forwards 127.0.0.1 connections to the server. The first `http` requests that carry a
    submitfuncspecmsg reach the server, but their connection is closed without the answer; on the
    first `ws` websockets the first frame after the handshake reaches the server, then the socket
    is closed without anything the server sent after it."""

    def __init__(self, target: ServerHandle, http: int = 0, ws: int = 0, swallow: int = 0) -> None:
        self.target = target
        self.http_left, self.ws_left = http, ws
        self.swallow_left = swallow  # websockets whose frames after the handshake never arrive
        self.submits = self.dropped = self.swallowed = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> AnswerDropper:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):  # ends each connection's readers, so its handler returns
            w.close()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    async def _conn(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._forward(cr, cw)
        finally:
            self._conns.discard(task)
            cw.close()

    async def _forward(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection(self.target.host, self.target.port)
        self._writers |= {cw, sw}
        websocket = drop_after_next = False
        cut = asyncio.Event()

        async def upstream() -> None:
            nonlocal websocket, drop_after_next
            swallowing = False
            while data := await cr.read(65536):
                if swallowing:  # the socket stays open; what the client sends never arrives
                    self.swallowed += 1
                    continue
                if b"upgrade: websocket" in data.lower() and self.swallow_left > 0:
                    self.swallow_left -= 1
                    swallowing = True
                elif b"upgrade: websocket" in data.lower() and self.ws_left > 0:
                    self.ws_left -= 1
                    websocket = True
                elif websocket:
                    websocket, drop_after_next = False, True
                sw.write(data)
                await sw.drain()
                if b"submitfuncspecmsg" in data:
                    self.submits += 1
                    if self.http_left > 0:
                        self.http_left -= 1
                        cut.set()
                if drop_after_next:
                    await asyncio.sleep(0.5)  # the server stores the submission meanwhile
                    cut.set()

        async def downstream() -> None:
            while data := await sr.read(65536):
                if cut.is_set():
                    return
                cw.write(data)
                await cw.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream()),
                 asyncio.create_task(cut.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if cut.is_set():
                self.dropped += 1
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for w in (cw, sw):
                self._writers.discard(w)
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()


@contextlib.asynccontextmanager
async def gateway_via(proxy: AnswerDropper, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(replace(settings, server_port=proxy.port))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=60) as http:
        yield http


@pytest.mark.parametrize("drop", ["http", "ws"])
async def test_a_call_whose_submission_answer_is_lost_runs_once(
        server: ServerHandle, settings: Settings, deployed: Any, executor: RealExecutor, drop: str) -> None:
    """http: a call with an Idempotency-Key (submitted over HTTP); ws: a call without one, which
    colonyfaas' own server takes on the pubsub socket."""
    proxy = await AnswerDropper(server, **{drop: 1}).start()
    headers = {"Idempotency-Key": "lost-1"} if drop == "http" else {}
    try:
        async with gateway_via(proxy, settings) as http:
            r = await http.post("/function/echo", json={"token": f"lost-{drop}"}, headers=headers)
    finally:
        await proxy.close()
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"args": [], "kwargs": {"token": f"lost-{drop}"}}
    assert proxy.dropped == 1
    if drop == "http":
        assert proxy.submits == 2  # the resend, which found the first one's process
    assert runs(deployed, "echo") == 1


async def test_a_call_the_server_never_received_is_a_503_not_a_404(
        server: ServerHandle, settings: Settings, deployed: Any, executor: RealExecutor) -> None:
    """A batched socket submission has no acknowledgement: when its frame never arrives (and the
    socket stays open), the deadline's get_process finds nothing. That is "not received, not run:
    send it again" (503), not "no such process" (404)."""
    proxy = await AnswerDropper(server, swallow=1).start()
    try:
        async with gateway_via(proxy, settings) as http:
            r = await http.post("/function/echo", json={"token": "never"}, headers={"X-Timeout": "1"})
    finally:
        await proxy.close()
    assert r.status_code == 503 and "did not receive the call of echo" in r.json()["error"], r.text
    assert proxy.swallowed >= 1
    assert runs(deployed, "echo") == 0


async def test_without_resends_a_lost_answer_is_a_503_that_a_keyed_retry_answers(
        server: ServerHandle, settings: Settings, deployed: Any, executor: RealExecutor) -> None:
    """submit_retry=0: the lost answers reach the client as 503 (the SDK's one resend, when the
    first went on a kept-alive connection, is lost too); its retry with the same Idempotency-Key
    gets the first call's process, also from a gateway that never saw the key."""
    proxy = await AnswerDropper(server, http=2).start()
    body, headers = {"token": "retry"}, {"Idempotency-Key": "lost-2"}
    try:
        async with gateway_via(proxy, replace(settings, submit_retry=0)) as http:
            r = await http.post("/function/echo", json=body, headers=headers)
            assert r.status_code == 503 and "submitting echo" in r.json()["error"], r.text
    finally:
        await proxy.close()
    proxy = await AnswerDropper(server).start()
    try:
        async with gateway_via(proxy, settings) as http:  # as another replica would
            r = await http.post("/function/echo", json=body, headers=headers)
    finally:
        await proxy.close()
    assert r.status_code == 200 and r.json()["result"]["kwargs"] == body, r.text
    assert runs(deployed, "echo") == 1


async def test_a_key_reused_with_other_arguments_is_a_422_also_on_a_gateway_that_never_saw_it(
        make_app: Any, deployed: Any) -> None:
    headers = {"Idempotency-Key": "k-args"}
    for body, status in (({"token": "a"}, 202), ({"token": "b"}, 422)):
        app = make_app()  # a fresh gateway each time: only the server remembers the key
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
            r = await http.post("/async-function/echo", json=body, headers=headers)
        assert r.status_code == status, r.text
    assert "different arguments" in r.json()["error"]
    assert runs(deployed, "echo") == 1
