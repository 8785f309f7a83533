"""The gateway and the executor reaching the server through its Unix socket (COLONIES_SERVER_SOCKET):
a call end to end, with the TCP port closed so that nothing can take the other way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway import wsclient
from gateway.app import create_app
from gateway.settings import Settings
from sdk import Colonies
from tests.harness.ports import free_port
from tests.harness.s3 import S3Server
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ThreadServer

from . import functions
from .conftest import RealExecutor, s3_settings, store_for
from .helpers import bundle_for


@pytest.fixture
def unix_stack(tmp_path: Path, s3_server: S3Server) -> Iterator[tuple[str, int]]:
    """A server also on a Unix socket, `convert` deployed and the real executor, both through the
    socket; yields (socket path, a TCP port nobody listens on)."""
    path = str(tmp_path / "colonies.sock")
    srv = ThreadServer(db=f"sqlite:///{tmp_path / 'colonies.db'}", dev=True, unix_socket=path)
    handle = srv.start()
    closed = free_port()
    with Colonies("127.0.0.1", closed, prvkey=DEV_PRVKEY, store=store_for(s3_server), unix_socket=path) as c:
        c.upload_bytes(DEV_COLONY, "/faas", "convert", bundle_for(functions.convert))
    unreachable = type(handle)("127.0.0.1", closed, handle.db)
    ex = RealExecutor(unreachable, s3_server, tmp_path / "executor", unix_socket=path).start()
    try:
        yield path, closed
    finally:
        ex.stop()
        srv.stop()


async def test_a_call_goes_through_the_socket_end_to_end(unix_stack: tuple[str, int], s3_server: S3Server) -> None:
    path, closed = unix_stack
    settings = Settings(colony=DEV_COLONY, prvkey=DEV_PRVKEY, server_host="127.0.0.1", server_port=closed,
                        server_socket=path, s3=s3_settings(s3_server), timeout=20.0)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        assert (await http.get("/healthz")).status_code == 200
        for celsius in (21, -40):
            r = await http.get("/function/convert", params={"celsius": str(celsius)})
            assert r.status_code == 200, r.text
            assert r.json()["result"] == celsius * 9 / 5 + 32
        # A Unix socket's peer is on this host: the waiter's sockets are bound, not refused.
        assert app.state.gateway.waiter.sessions is True


async def test_a_websocket_through_a_unix_socket_is_plain_ws() -> None:
    with pytest.raises(ValueError, match="not wss://"):
        await wsclient.connect("wss://srv/pubsub", unix_socket="/run/colonies.sock")
