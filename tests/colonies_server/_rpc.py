"""A tiny signed-envelope client for the server's own tests (signing via sdk.crypto)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from sdk.crypto import id_from_prvkey, new_prvkey, sign

T = TypeVar("T")
SERVER_PRVKEY = "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d"
COLONY_PRVKEY = "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514"
DEV_PRVKEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"


def envelope(msg: dict[str, Any], prvkey: str | None) -> dict[str, str]:
    payload = base64.b64encode(json.dumps(msg).encode()).decode()
    return {"payloadtype": msg["msgtype"], "payload": payload, "signature": sign(payload, prvkey) if prvkey else ""}


def decode(body: bytes) -> tuple[bool, Any]:
    env = json.loads(body)
    return bool(env["error"]), json.loads(base64.b64decode(env["payload"]))


class Client:
    """POST /api with signed envelopes; `ok` returns the result, `err` returns (status, message)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def raw(self, msg: dict[str, Any], prvkey: str | None) -> httpx.Response:
        return self.http.post("/api", content=json.dumps(envelope(msg, prvkey)))

    def ok(self, msg: dict[str, Any], prvkey: str | None) -> Any:
        r = self.raw(msg, prvkey)
        error, payload = decode(r.content)
        assert r.status_code == 200 and not error, f"{msg['msgtype']}: {r.status_code} {payload}"
        return payload

    def err(self, msg: dict[str, Any], prvkey: str | None) -> tuple[int, str]:
        r = self.raw(msg, prvkey)
        error, payload = decode(r.content)
        assert error, f"{msg['msgtype']} unexpectedly succeeded: {payload}"
        assert payload["status"] == r.status_code
        return r.status_code, payload["message"]

    def add_executor(self, colony: str = "dev", executortype: str = "t", name: str | None = None) -> tuple[str, str]:
        """A new approved executor: (prvkey, name)."""
        prv = new_prvkey()
        name = name or f"ex-{id_from_prvkey(prv)[:8]}"
        self.ok({"msgtype": "addexecutormsg", "executor": {"executorid": id_from_prvkey(prv), "executortype": executortype,
                 "executorname": name, "colonyname": colony}}, COLONY_PRVKEY)
        self.ok({"msgtype": "approveexecutormsg", "colonyname": colony, "executorname": name}, COLONY_PRVKEY)
        return prv, name

    def submit(self, executortype: str = "t", prvkey: str = DEV_PRVKEY, **spec: Any) -> dict[str, Any]:
        s: dict[str, Any] = {"funcname": "f", "maxexectime": -1, "maxwaittime": -1, "maxretries": -1,
                             "conditions": {"colonyname": "dev", "executortype": executortype}}
        s.update(spec)
        return self.ok({"msgtype": "submitfuncspecmsg", "spec": s}, prvkey)  # type: ignore[no-any-return]

    def assign(self, prvkey: str, timeout: float = -1) -> dict[str, Any]:
        return self.ok({"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": timeout}, prvkey)  # type: ignore[no-any-return]

    def get(self, processid: str) -> dict[str, Any]:
        return self.ok({"msgtype": "getprocessmsg", "processid": processid}, DEV_PRVKEY)  # type: ignore[no-any-return]


def on_loop(loop: asyncio.AbstractEventLoop | None, coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the server's event loop (from the test thread) and return its result."""
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)


class Served:
    """A ThreadServer plus a client and direct access to the app (runtime, timers, loop)."""

    def __init__(self, db: str, **settings: Any) -> None:
        from tests.harness.server import ThreadServer

        self.srv = ThreadServer(db=db, dev=True, **settings)
        self.handle = self.srv.start()
        self.app = self.srv.app
        self.client = Client(self.handle.url)

    @property
    def runtime(self) -> Any:
        return self.app.runtime

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return on_loop(self.app.loop, coro)

    def close(self) -> None:
        self.client.close()
        self.srv.stop()
