"""schemathesis against the running gateway's /openapi.json: bad input never yields a 500."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from tests.harness.require import require
from tests.harness.s3 import S3Server
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ServerHandle

from . import functions
from .conftest import RealExecutor, store_for
from .helpers import ThreadGateway, bundle_for


@pytest.fixture
def deployed(server: ServerHandle, s3_server: S3Server) -> Iterator[Any]:
    """Only functions that do not raise: a 500 here must be a gateway bug, never a function's error."""
    from sdk import Colonies

    client = Colonies(host=server.host, port=server.port, prvkey=DEV_PRVKEY, store=store_for(s3_server))
    for fn in (functions.convert, functions.greet, functions.echo):
        client.upload_bytes(DEV_COLONY, "/faas", fn.__name__, bundle_for(fn))
    try:
        yield client
    finally:
        client.close_connections()


def _schemathesis() -> str | None:
    exe = Path(sys.executable).parent / "schemathesis"
    return str(exe) if exe.exists() else None


def test_schemathesis_finds_no_server_error(settings: Settings, executor: RealExecutor, tmp_path: Path) -> None:
    exe = _schemathesis()
    require(exe, "schemathesis", "pip install 'colonyfaas[dev]'")
    assert exe is not None
    gw = ThreadGateway(settings).start()
    try:
        proc = subprocess.run(
            [exe, "run", f"{gw.url}/openapi.json", "--checks", "not_a_server_error,content_type_conformance",
             "--max-examples", "25", "--workers", "1", "--no-color", "--generation-database", "none",
             "--phases", "examples,coverage,fuzzing", "--request-timeout", "20", "--seed", "7",
             ],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
    finally:
        gw.stop()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
