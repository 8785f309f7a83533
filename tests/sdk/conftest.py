"""Fixtures for SDK tests: the protocol vectors, and clients bound to the real test server."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk import AsyncColonies, Colonies, LocalStore
from tests.harness.require import require

VECTORS = Path(__file__).resolve().parents[1] / "data" / "colonies_vectors.json"


def server_available() -> bool:
    return importlib.util.find_spec("colonies_server.app") is not None


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


@pytest.fixture
def live(request: pytest.FixtureRequest) -> Any:
    """The real server (tests.harness ThreadServer); skipped (failed in CI) while it is missing."""
    require(server_available(), "colonies_server.app", "the server package must be importable")
    return request.getfixturevalue("server")


@pytest.fixture
def client(live: Any, tmp_path: Path) -> Iterator[Colonies]:
    from tests.harness.server import DEV_COLONY, DEV_PRVKEY

    with Colonies(live.host, live.port, prvkey=DEV_PRVKEY, colonyname=DEV_COLONY,
                  store=LocalStore(tmp_path / "store")) as c:
        yield c


@pytest.fixture
async def aclient(live: Any, tmp_path: Path) -> AsyncIterator[AsyncColonies]:
    from tests.harness.server import DEV_COLONY, DEV_PRVKEY

    async with AsyncColonies(live.host, live.port, prvkey=DEV_PRVKEY, colonyname=DEV_COLONY,
                             store=LocalStore(tmp_path / "store")) as c:
        yield c
