"""The server on a Unix socket (`faas server start --unix-socket`) and our clients reaching it there
(COLONIES_SERVER_SOCKET): sync and async clients, their websockets, FastRPC with a session, errors."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from colonies_server.transport import bind_unix, unlink_unix_socket
from sdk import (
    AsyncColonies,
    Colonies,
    ColoniesConnectionError,
    Conditions,
    Config,
    FuncSpec,
    ProcessState,
)
from sdk import messages as m
from sdk.fastrpc import AsyncFastRPC, FastRPC
from tests.harness.ports import free_port
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ThreadServer


@pytest.fixture(scope="module")
def unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(socket path, a TCP port nobody listens on): a client that reaches the server with that
    port can only have come through the socket."""
    d = tmp_path_factory.mktemp("uds")
    path = str(d / "colonies.sock")
    srv = ThreadServer(db=f"sqlite:///{d / 'colonies.db'}", dev=True, unix_socket=path)
    srv.start()
    try:
        yield path, free_port()
    finally:
        srv.stop()


def test_the_sync_client_and_its_websocket_go_through_the_socket(unix_server: tuple[str, int]) -> None:
    path, closed = unix_server
    with pytest.raises(ColoniesConnectionError):  # the port really is closed
        Colonies("127.0.0.1", closed, prvkey=DEV_PRVKEY).get_colony(DEV_COLONY)
    c = Colonies("127.0.0.1", closed, prvkey=DEV_PRVKEY, unix_socket=path)
    try:
        assert c.get_colony(DEV_COLONY).name == DEV_COLONY
        p = c.submit(FuncSpec(funcname="f", conditions=Conditions(colonyname=DEV_COLONY, executortype="cli")))
        assigned = c.assign(DEV_COLONY, 5)
        assert assigned is not None and assigned.processid == p.processid

        def close_soon() -> None:
            threading.Event().wait(0.3)  # after wait() has subscribed over its websocket
            c.close(p.processid, ["via unix"])
        closer = threading.Thread(target=close_soon)
        closer.start()
        ended = c.wait(p.processid, 10)
        closer.join()
        assert (ended.state, ended.output) == (ProcessState.SUCCESS, ["via unix"])
    finally:
        c.close_connections()


async def test_the_async_client_goes_through_the_socket(unix_server: tuple[str, int]) -> None:
    path, closed = unix_server
    async with AsyncColonies("127.0.0.1", closed, prvkey=DEV_PRVKEY, unix_socket=path) as c:
        assert (await c.get_colony(DEV_COLONY)).name == DEV_COLONY
        p = await c.submit(FuncSpec(funcname="g", conditions=Conditions(colonyname=DEV_COLONY, executortype="cli")))
        assert (await c.get_process(p.processid)).state == ProcessState.WAITING
        await c.remove_process(p.processid)


def test_fastrpc_binds_a_session_on_the_socket(unix_server: tuple[str, int]) -> None:
    """A Unix socket's peer is on this host, so the server grants it a connection session."""
    path, closed = unix_server
    rpc = FastRPC("127.0.0.1", closed, False, DEV_PRVKEY, sessions=True, unix_socket=path)
    try:
        assert rpc.send(m.get_colony(DEV_COLONY)).name == DEV_COLONY
        assert rpc.sessions is True
        (conn,) = rpc._idle
        assert conn.session is not None and conn.session[0] == DEV_PRVKEY
        assert rpc.send(m.get_colony(DEV_COLONY)).name == DEV_COLONY  # under the session marker
    finally:
        rpc.close()


async def test_async_fastrpc_goes_through_the_socket(unix_server: tuple[str, int]) -> None:
    path, closed = unix_server
    rpc = AsyncFastRPC("127.0.0.1", closed, False, DEV_PRVKEY, unix_socket=path)
    try:
        assert (await rpc.send(m.get_colony(DEV_COLONY))).name == DEV_COLONY
    finally:
        await rpc.aclose()


def test_a_missing_socket_is_a_connection_error_naming_it(tmp_path: Path) -> None:
    gone = str(tmp_path / "nobody.sock")
    rpc = FastRPC("127.0.0.1", 1, False, DEV_PRVKEY, unix_socket=gone)
    with pytest.raises(ColoniesConnectionError, match=f"unix:{gone}"):
        rpc.send(m.get_colony(DEV_COLONY))
    with pytest.raises(ColoniesConnectionError, match=f"unix:{gone}"):
        asyncio.run(AsyncFastRPC("127.0.0.1", 1, False, DEV_PRVKEY, unix_socket=gone).send(m.get_colony(DEV_COLONY)))


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_http_client_names_a_missing_socket(tmp_path: Path) -> None:
    gone = str(tmp_path / "nobody.sock")
    with Colonies("127.0.0.1", 1, prvkey=DEV_PRVKEY, unix_socket=gone) as c, \
            pytest.raises(ColoniesConnectionError, match=f"cannot reach the server at unix:{gone}"):
        c.get_colony(DEV_COLONY)
    gc.collect()  # httpcore 1.0.9's sync backend leaves a failed Unix connect's socket to the collector


def test_config_reads_and_writes_colonies_server_socket() -> None:
    cfg = Config.from_env({"COLONIES_SERVER_SOCKET": " /run/colonies.sock ", "COLONIES_SERVER_TLS": "true"})
    assert cfg.unix_socket == "/run/colonies.sock"
    assert cfg.to_env()["COLONIES_SERVER_SOCKET"] == "/run/colonies.sock"
    assert "COLONIES_SERVER_SOCKET" not in Config.from_env({}).to_env()
    c = Colonies.from_config(cfg)
    try:  # no TLS on a socket that never leaves the host; errors name the socket
        assert (c.url.startswith("http://"), c.ws_url.startswith("ws://"), c.ssl_context) == (True, True, None)
        assert repr(c) == "Colonies('unix:/run/colonies.sock')"
    finally:
        c.close_connections()


# -- bind_unix / unlink_unix_socket --------------------------------------------------------------------

def _stale_socket_file(path: str) -> None:
    """A socket file whose server is gone (closed without unlinking, as after kill -9)."""
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()


def test_a_stale_socket_file_is_replaced_and_removed_at_the_end(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    _stale_socket_file(path)
    sock = bind_unix(path)
    try:
        assert Path(path).stat().st_mode & 0o777 == 0o666
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(path)  # listening
        probe.close()
        unlink_unix_socket(path)  # someone (we) still listens: kept
        assert Path(path).exists()
    finally:
        sock.close()
    unlink_unix_socket(path)
    assert not Path(path).exists()


def test_a_live_socket_or_another_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    first = bind_unix(path)
    try:
        with pytest.raises(OSError, match="another server is listening"):
            bind_unix(path)
    finally:
        first.close()
    plain = tmp_path / "notes.txt"
    plain.write_text("mine")
    with pytest.raises(OSError, match="exists and is not a socket"):
        bind_unix(str(plain))
    unlink_unix_socket(str(plain))
    assert plain.read_text() == "mine"
    with pytest.raises(OSError, match=f"cannot listen on {tmp_path}/missing/s.sock"):
        bind_unix(str(tmp_path / "missing" / "s.sock"))
