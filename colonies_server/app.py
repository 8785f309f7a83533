"""The ASGI application: POST /api, GET /health, WebSocket /pubsub, and the lifespan that owns the store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from .bootstrap import bootstrap
from .cluster import Cluster, start_cluster
from .config import Settings
from .envelope import encode_error
from .pubsub import serve_pubsub
from .rpc import dispatch, is_long_poll
from .runtime import Runtime
from .sessions import FORWARDED
from .store import StoreUnavailable, open_store
from .timers import Timers

__all__ = ["ColoniesApp", "create_app"]

log = logging.getLogger(__name__)
Scope = dict[str, Any]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class ColoniesApp:
    """A small raw ASGI app (no framework). `faas server start` serves POST /api without ASGI
    (transport.ColoniesHttpProtocol); this ASGI route does the same for other ASGI servers."""

    def __init__(self, settings: Settings) -> None:
        if settings.dev and not settings.allow_executor_reregister:
            settings = replace(settings, allow_executor_reregister=True)
        self.settings = settings
        self.runtime: Runtime | None = None
        self.timers: Timers | None = None
        self.cluster: Cluster | None = None  # PostgreSQL: relay to and leadership among replicas
        # The loop serving this app: tests hand coroutines (e.g. timers.run_once()) to it.
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            if scope["path"] != "/pubsub" or self.runtime is None:
                await send({"type": "websocket.close", "code": 1008})
                return
            forwarded = any(name in FORWARDED for name, _ in scope.get("headers") or ())
            await serve_pubsub(self.runtime, receive, send, scope.get("peer", scope.get("client")), forwarded)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    if isinstance(e, StoreUnavailable):  # says what and why: no traceback
                        log.error("start-up failed: %s", e)
                    else:
                        log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        s = self.settings
        self.loop = asyncio.get_running_loop()
        store = open_store(s.db, synchronous=s.sqlite_synchronous)
        await store.open()
        rt = Runtime(settings=s, store=store)
        store.on_commit = rt.hub.publish
        await bootstrap(rt)
        self.cluster = await start_cluster(rt)
        self.runtime = rt
        self.timers = Timers(rt, leader=self.cluster.is_leader if self.cluster is not None else None)
        self.timers.start()

    async def shutdown(self) -> None:
        if self.timers is not None:
            await self.timers.stop()
        if self.cluster is not None:
            await self.cluster.stop()
            self.cluster = None
        if self.runtime is not None:
            await self.runtime.store.close()
            self.runtime = None

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/api" and method == "POST":
            rt = self.runtime
            if rt is None:
                await _respond(send, 503, encode_error(503, "server is starting or stopping"))
                return
            body = await _read_body(scope, receive, self.settings.body_limit)
            if body is None:
                await _respond(send, 413, encode_error(413, f"request body larger than {self.settings.body_limit} bytes"))
                return
            if is_long_poll(body):
                result = await _unless_disconnected(dispatch(rt, body), receive)
                if result is None:
                    return
                status, out = result
            else:
                status, out = await dispatch(rt, body)
            await _respond(send, status, out)
        elif path == "/health" and method in ("GET", "HEAD"):
            await _respond(send, 200 if self.runtime is not None else 503, b"")
        else:
            await _respond(send, 404, encode_error(404, f"no route {method} {path}"))


async def _unless_disconnected(coro: Any, receive: Any) -> Any:
    """Run coro; cancel it (and return None) if the client disconnects first."""
    work = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if work.done():
        return work.result()
    work.cancel()
    try:
        await work
    except asyncio.CancelledError:
        pass
    return None


async def _disconnected(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(scope: Scope, receive: Any, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` (without buffering the rest)."""
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                if int(v) > limit:
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_TEXT, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings) -> ColoniesApp:
    """The ASGI app for these settings; its lifespan opens the store, bootstraps and starts the timers."""
    return ColoniesApp(settings)
