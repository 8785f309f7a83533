"""Fixtures for the gateway's end-to-end tests: real server + S3, deployed functions, an executor."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import S3Settings, Settings
from tests.harness.s3 import S3Server
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY, ServerHandle

from . import functions
from .helpers import bundle_for

DEPLOYED = [functions.convert, functions.greet, functions.boom, functions.echo, functions.logme]


def s3_settings(s3: S3Server) -> S3Settings:
    return S3Settings(endpoint=s3.endpoint, accesskey=s3.access_key, secretkey=s3.secret_key, bucket=s3.bucket,
                      region=s3.region)


def store_for(s3: S3Server) -> Any:
    from sdk import S3Config, S3Store

    return S3Store(S3Config(endpoint=s3.endpoint, accesskey=s3.access_key, secretkey=s3.secret_key,
                            bucket=s3.bucket, region=s3.region))


@pytest.fixture
def settings(server: ServerHandle, s3_server: S3Server) -> Settings:
    return Settings(colony=DEV_COLONY, prvkey=DEV_PRVKEY, server_host=server.host, server_port=server.port,
                    s3=s3_settings(s3_server), timeout=20.0, callback_backoff=0.05, callback_attempts=4)


@pytest.fixture
def deployed(server: ServerHandle, s3_server: S3Server) -> Iterator[Any]:
    """The test functions uploaded to CFS /faas; yields the sync client (for more deploys)."""
    from sdk import Colonies

    client = Colonies(host=server.host, port=server.port, prvkey=DEV_PRVKEY, store=store_for(s3_server))
    for fn in DEPLOYED:
        client.upload_bytes(DEV_COLONY, "/faas", fn.__name__, bundle_for(fn))
    try:
        yield client
    finally:
        client.close_connections()


class RealExecutor:
    """faas_executor's Executor (sandboxed warm workers) serving on a thread until stop()."""

    def __init__(self, server: ServerHandle, s3: S3Server, workdir: Path, unix_socket: str = "") -> None:
        from faas_executor.config import ExecutorSettings
        from faas_executor.executor import Executor
        from faas_executor.pool import PoolSettings
        from sdk import Colonies

        self.client = Colonies(server.host, server.port, prvkey=DEV_PRVKEY, store=store_for(s3),
                               unix_socket=unix_socket)
        settings = ExecutorSettings(
            colonyname=DEV_COLONY, executorname=f"gw-e2e-{workdir.name[-8:]}", colony_prvkey=COLONY_PRVKEY,
            concurrency=2, assign_timeout=1.0, lease=5.0, state_dir=str(workdir / "state"),
            pool=PoolSettings(scratch_root=str(workdir / "scratch"), size=2, uid_base=64700))
        self.executor = Executor(settings, self.client)
        self.thread = threading.Thread(target=self.executor.run, name="gateway-e2e-executor")

    def start(self) -> RealExecutor:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.executor.request_stop()
        self.thread.join(timeout=60)
        self.client.close_connections()


@pytest.fixture
def executor(server: ServerHandle, s3_server: S3Server, deployed: Any, tmp_path: Path) -> Iterator[RealExecutor]:
    """The real FaaS executor, serving the deployed functions."""
    ex = RealExecutor(server, s3_server, tmp_path / "executor").start()
    try:
        yield ex
    finally:
        ex.stop()


def runs(client: Any, funcname: str) -> int:
    """How many processes of this function exist on the server (any state)."""
    return sum(1 for state in (0, 1, 2, 3) for p in client.get_processes(DEV_COLONY, state, count=100) or []
               if p.spec.funcname == funcname)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        yield client


@pytest.fixture
def make_app(settings: Settings) -> Any:
    """create_app with some settings changed (auth, an unreachable server …)."""
    def make(**changes: Any) -> Any:
        return create_app(replace(settings, **changes))
    return make
