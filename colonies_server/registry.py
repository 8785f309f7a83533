"""msgtype → handler table, filled by the handlers package with the @rpc decorator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .runtime import Runtime

__all__ = ["HANDLERS", "UNSIGNED", "Handler", "rpc"]

Handler = Callable[[Runtime, str, dict[str, Any]], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}
UNSIGNED: set[str] = set()


def rpc(msgtype: str, *, signed: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler: async (runtime, signer_id, msg) -> result JSON (or raise RPCError)."""
    def deco(fn: Handler) -> Handler:
        HANDLERS[msgtype] = fn
        if not signed:
            UNSIGNED.add(msgtype)
        return fn
    return deco
