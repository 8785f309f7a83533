"""Fixtures that start our own components (server, executor, gateway) for tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres import BACKENDS, database_url
from .server import ServerHandle, ThreadServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerHandle]:
    """A fresh server (SQLite in tmp_path, bootstrapped with --dev identities) on 127.0.0.1."""
    srv = ThreadServer(db=f"sqlite:///{tmp_path / 'colonies.db'}", dev=True)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test, once per backend in COLONYFAAS_TEST_DB (SQLite and PostgreSQL by default)."""
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """db_url for a module-scoped server."""
    with database_url(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url
