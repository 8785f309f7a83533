"""`within(aw, timeout)`: await with a deadline, without the extra task asyncio.wait_for makes.

On the call path (every RPC of the async sender, every pubsub frame and every wait of the gateway)
`asyncio.wait_for` wrapped the awaitable in a new Task each time (Python 3.11). `asyncio.timeout`
cancels the current task instead; both raise `asyncio.TimeoutError` (the builtin TimeoutError
from 3.11 on). Python 3.10 has no `asyncio.timeout` and keeps `wait_for`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):
    async def within(aw: Awaitable[T], timeout: float | None) -> T:
        async with asyncio.timeout(timeout):
            return await aw
else:  # pragma: no cover - exercised only on 3.10
    async def within(aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)
