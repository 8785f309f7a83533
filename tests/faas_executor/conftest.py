"""Fixtures for executor tests: bundles built in-test and real worker pools in tmp_path."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faas_executor.bundle import Bundle, parse_bundle
from faas_executor.handle import NestedHook
from faas_executor.pool import PoolSettings, WorkerPool


def bundle_bytes(name: str, code: str, *, serializer: str = "source", entrypoint: str | None = None,
                 limits: dict[str, Any] | None = None, requirements: list[str] | None = None) -> bytes:
    """Bytes in the deployer's bundle format."""
    return json.dumps({
        "format": "colonyfaas-bundle/1", "name": name, "version": "v-" + name, "entrypoint": entrypoint or name,
        "serializer": serializer, "code": code, "python": "3.11.7",
        "cloudpickle": "3.1.1" if serializer == "cloudpickle" else None,
        "signature": {"parameters": [], "return": None}, "doc": None,
        "limits": {"timeout": None, "retries": None, "memory_mb": None, "network": False, **(limits or {})},
        "requirements": requirements or [], "deployed_at": "2026-11-22T22:00:00Z",
    }).encode()


def source(name: str, code: str, **kw: Any) -> Bundle:
    """A parsed source bundle from dedented code."""
    return parse_bundle(name, bundle_bytes(name, textwrap.dedent(code), **kw))


def pickled(name: str, fn: Callable[..., Any]) -> Bundle:
    import cloudpickle

    return parse_bundle(name, bundle_bytes(name, base64.b64encode(cloudpickle.dumps(fn)).decode(),
                                           serializer="cloudpickle"))


PoolFactory = Callable[..., WorkerPool]


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[PoolFactory]:
    """Build real pools (closed, with every worker, at teardown)."""
    pools: list[WorkerPool] = []

    def make(nested: NestedHook | None = None, **changes: Any) -> WorkerPool:
        # Tests take uids above the default range, clear of any executor running on the machine.
        defaults: dict[str, Any] = {"size": 2, "uid_base": 64600,
                                    "scratch_root": str(tmp_path / f"scratch-{len(pools)}")}
        settings = PoolSettings(**{**defaults, **changes})
        pool = WorkerPool(settings, nested=nested)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def pool(make_pool: PoolFactory) -> WorkerPool:
    return make_pool()
