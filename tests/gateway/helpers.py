"""Test helpers for the gateway: bundles, a real gateway on a thread, a callback receiver."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.fastpath import FastCalls
from gateway.serving import GatewayHttpProtocol
from gateway.settings import Settings


def bundle_for(fn: Any, *, limits: dict[str, Any] | None = None, name: str | None = None) -> bytes:
    """A colonyfaas-bundle/1 document for a module-level test function (serializer "source")."""
    name = name or fn.__name__
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        has_default = p.default is not inspect.Parameter.empty
        ann = p.annotation
        params.append({
            "name": p.name, "kind": p.kind.name, "has_default": has_default,
            "default": p.default if has_default else None,
            "annotation": None if ann is inspect.Parameter.empty else ann if isinstance(ann, str)
            else inspect.formatannotation(ann),
        })
    source = textwrap.dedent(inspect.getsource(fn))
    doc = {
        "format": "colonyfaas-bundle/1", "name": name, "version": "test-1", "entrypoint": fn.__name__,
        "serializer": "source", "code": source, "python": "3.11", "cloudpickle": None,
        "signature": {"parameters": params, "return": None}, "doc": inspect.getdoc(fn),
        "limits": {"timeout": 30, "retries": 0, "memory_mb": None, "network": False, **(limits or {})},
        "requirements": [], "deployed_at": "2026-01-01T00:00:00.000Z",
    }
    return json.dumps(doc).encode()


def without_fast_path(app: Any) -> Any:
    """`app` (not started yet) with fastpath.FastCalls taken out: FastAPI's own routes answer
    GET/POST /function/{name}."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastCalls]
    return app


class ThreadGateway:
    """The real gateway app served by uvicorn on a pre-bound 127.0.0.1 socket, on a thread."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.app = create_app(settings)
        # The protocol `faas gateway start` serves with (gateway/serving.py).
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                                    http=GatewayHttpProtocol))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       name="gateway-test-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadGateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@dataclass
class CallbackReceiver:
    """A minimal HTTP endpoint in the test's event loop; answers the scripted statuses in order."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[tuple[dict[str, str], Any, int]] = field(default_factory=list)
    delivered: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> CallbackReceiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.statuses[min(len(self.received), len(self.statuses) - 1)]
                self.received.append((headers, json.loads(body) if body else None, status))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
                if 200 <= status < 300:
                    self.delivered.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class SilentServer:
    """A TCP server that accepts connections, reads what arrives and never answers: a hung server."""

    server: asyncio.Server | None = None
    port: int = 0
    connections: list[asyncio.StreamWriter] = field(default_factory=list)
    handlers: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> SilentServer:
        self.server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for writer in self.connections:
            writer.close()
        # Each handler ends once its connection is closed; none is left for the loop's shutdown.
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.handlers.append(task)
        self.connections.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
