"""`within(aw, timeout)`: await with a deadline, without the extra task asyncio.wait_for makes;
`settled(fut, timeout)`: wait for a shared future without cancelling it.

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

__all__ = ["settled", "within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):
    async def within(aw: Awaitable[T], timeout: float | None) -> T:
        async with asyncio.timeout(timeout):
            return await aw
else:  # pragma: no cover - exercised only on 3.10
    async def within(aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)


async def settled(fut: asyncio.Future[T], timeout: float) -> bool:
    """Wait until `fut` is done or `timeout` seconds passed, whichever comes first; True when done.

    `fut` is never cancelled, also not when the waiting task is: what `within(asyncio.shield(fut),
    timeout)` does for a future that several callers wait on, with one timer instead of a shield
    future, a Timeout context and a cancellation of the waiting task at the deadline.
    """
    if fut.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)
    timer = loop.call_later(max(0.0, timeout), wake)
    fut.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        fut.remove_done_callback(wake)
    return fut.done()
