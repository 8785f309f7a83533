"""The FaaS executor: runs deployed functions in sandboxed warm workers.

The worker child imports this package too, so nothing heavy is imported eagerly here: the pool
names load on first use, and the executor itself (`faas_executor.executor.Executor`, which needs
the SDK) is never imported from here.
"""

from __future__ import annotations

from typing import Any

from .bundle import Bundle, BundleError, Limits, parse_bundle
from .call import Call, CallError, call_from_spec

__all__ = [
    "Bundle",
    "BundleError",
    "Call",
    "CallError",
    "Limits",
    "Outcome",
    "PoolSettings",
    "Reason",
    "WorkerPool",
    "call_from_spec",
    "parse_bundle",
]

_LAZY = {"Outcome": "handle", "Reason": "handle", "PoolSettings": "pool", "WorkerPool": "pool"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
