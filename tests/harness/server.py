"""Our Colonies server for tests: in-process on a thread (fast) or as a subprocess (kill -9 tests).

Contract with colonies_server (kept small on purpose):
- `colonies_server.config.Settings(host=..., port=..., db=..., dev=...)` is a frozen dataclass,
- `colonies_server.app.create_app(settings)` returns the ASGI app (lifespan opens/closes the store),
- `python -m colonies_server start --host H --port P --db URL [--dev]` runs it as a process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ports import free_port, wait_port

# Dev identities (protocol §2.2); `--dev` bootstraps colony "dev" with these.
SERVER_PRVKEY = "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d"
SERVER_ID = "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103"
COLONY_PRVKEY = "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514"
COLONY_ID = "4787a5071856a4acf702b2ffcea422e3237a679c681314113d86139461290cf4"
DEV_PRVKEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
DEV_ID = "3fc05cf3df4b494e95d6a3d297a34f19938f7daa7422ab0d4f794454133341ac"
DEV_COLONY = "dev"


@dataclass
class ServerHandle:
    host: str
    port: int
    db: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api"


class ThreadServer:
    """uvicorn serving create_app(settings) on a pre-bound 127.0.0.1 socket, in a daemon thread."""

    def __init__(self, db: str, dev: bool = True, uvicorn_options: dict[str, Any] | None = None,
                 **settings: Any) -> None:
        import uvicorn

        from colonies_server.app import create_app
        from colonies_server.config import Settings
        from colonies_server.transport import uvicorn_config

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.settings = Settings(host="127.0.0.1", port=port, db=db, dev=dev, **settings)
        self.app = create_app(self.settings)
        # The configuration `faas server start` runs with (POST /api outside ASGI), on our socket.
        options: dict[str, Any] = {"ws_ping_interval": None, "timeout_graceful_shutdown": None, **(uvicorn_options or {})}
        config = uvicorn_config(self.app, self.settings, **options)
        self.server = uvicorn.Server(config)
        self.handle = ServerHandle("127.0.0.1", port, db)
        self.unix_sock: socket.socket | None = None
        self.thread = threading.Thread(target=self._run, name="colonies-test-server", daemon=True)

    def _run(self) -> None:
        # uvloop, like `faas server start`: on the default asyncio loop every keep-alive request
        # waits ~40 ms for a delayed ACK, which made the server look 10x slower than it is.
        sockets = [self.sock]
        if self.settings.unix_socket:  # also on a Unix socket, as `faas server start --unix-socket`
            from colonies_server.transport import bind_unix

            self.unix_sock = bind_unix(self.settings.unix_socket)
            sockets.append(self.unix_sock)
        try:
            import uvloop
        except ImportError:
            asyncio.run(self.server.serve(sockets=sockets))
            return
        loop = uvloop.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.server.serve(sockets=sockets))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def start(self) -> ServerHandle:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.005)
        return self.handle

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        if self.unix_sock is not None:
            from colonies_server.transport import unlink_unix_socket

            self.unix_sock.close()
            unlink_unix_socket(self.settings.unix_socket)


class ProcessServer:
    """`python -m colonies_server start …` as a child process (for kill -9 and multi-replica tests)."""

    def __init__(self, db: str, dev: bool = True, port: int | None = None, log: Path | None = None,
                 args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.db = db
        self.cmd = [sys.executable, "-m", "colonies_server", "start", "--host", "127.0.0.1",
                    "--port", str(self.port), "--db", db, *(["--dev"] if dev else []), *(args or [])]
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ServerHandle:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(self.env or {})), start_new_session=True)
        if self.log:
            out.close()  # type: ignore[union-attr]
        try:
            wait_port(self.port, timeout=timeout)
        except TimeoutError:
            self.kill()
            raise
        return ServerHandle("127.0.0.1", self.port, self.db)

    def kill(self) -> None:
        """kill -9, no clean shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
