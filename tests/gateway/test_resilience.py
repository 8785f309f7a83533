"""A server killed with -9 and restarted under a waiting call: the call still gets its result."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.harness.s3 import S3Server
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ProcessServer, ServerHandle

from . import functions
from .conftest import RealExecutor, store_for
from .helpers import bundle_for


@pytest.fixture
def process_server(tmp_path: Path) -> Iterator[ProcessServer]:
    # Its own file: the `settings` fixture's in-process server has tmp_path/colonies.db open.
    srv = ProcessServer(db=f"sqlite:///{tmp_path / 'restarted.db'}", log=tmp_path / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


async def test_waiting_call_survives_a_server_restart(process_server: ProcessServer, s3_server: S3Server,
                                                      settings: Settings, tmp_path: Path) -> None:
    from sdk import Colonies

    handle = ServerHandle("127.0.0.1", process_server.port, process_server.db)
    client = Colonies(handle.host, handle.port, prvkey=DEV_PRVKEY, store=store_for(s3_server))
    try:
        client.upload_bytes(DEV_COLONY, "/faas", "convert", bundle_for(functions.convert))
    finally:
        client.close_connections()
    app = create_app(replace(settings, server_port=handle.port))
    executor: Any = None
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        waiter = app.state.gateway.waiter
        call = asyncio.ensure_future(http.get("/function/convert?celsius=37", headers={"X-Timeout": "60"}))
        while waiter.sockets_opened == 0 or waiter.pending == 0:  # until the call is subscribed
            done, _ = await asyncio.wait({call}, timeout=0.05)
            assert not done, call.result().text
        await asyncio.to_thread(process_server.kill)
        await asyncio.to_thread(process_server.start)
        executor = RealExecutor(handle, s3_server, tmp_path / "executor").start()
        try:
            reply = await asyncio.wait_for(call, 60)
            # And the next call works on the re-established connections.
            again = await http.get("/function/convert?celsius=0")
        finally:
            await asyncio.to_thread(executor.stop)
        assert reply.status_code == 200, reply.text
        assert reply.json()["result"] == pytest.approx(98.6)
        assert waiter.sockets_opened >= 2  # the first socket died with the server
        assert again.status_code == 200 and again.json()["result"] == 32
