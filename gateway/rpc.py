"""The two RPCs on every invocation's path (submit, get_process), over the SDK's lean sender.

Why not AsyncColonies (httpx) here: see `sdk.fastrpc`. Everything else the gateway does goes
through AsyncColonies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdk import messages
from sdk.fastrpc import AsyncFastRPC
from sdk.models import FuncSpec, Process

__all__ = ["LeanRPC"]


class LeanRPC(AsyncFastRPC):
    """`AsyncFastRPC` with the gateway's two calls (a submit is resent only with its idempotency
    key: see NOT_RESENT)."""

    async def submit(self, spec: FuncSpec | Mapping[str, Any], idempotency_key: str | None = None) -> Process:
        return await self.send(messages.submit(spec, idempotency_key=idempotency_key))

    async def get_process(self, processid: str) -> Process:
        return await self.send(messages.get_process(processid))
