"""sdk.aio.within: a result in time, TimeoutError (and the awaitable cancelled) after the deadline;
sdk.aio.settled: a shared future waited for, never cancelled."""

from __future__ import annotations

import asyncio

import pytest

from sdk.aio import settled, within


async def test_a_result_in_time_is_returned() -> None:
    async def quick() -> int:
        await asyncio.sleep(0)
        return 7
    assert await within(quick(), 5) == 7
    assert await within(quick(), None) == 7


async def test_the_deadline_raises_timeout_and_cancels_the_awaitable() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
    with pytest.raises(asyncio.TimeoutError):
        await within(slow(), 0.05)
    assert cancelled.is_set()
    # A shielded future survives its waiter's timeout (the gateway's shared waits rely on it).
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(asyncio.TimeoutError):
        await within(asyncio.shield(fut), 0.01)
    assert not fut.cancelled()
    fut.set_result(1)
    assert await within(asyncio.shield(fut), 1) == 1


async def test_an_outer_cancel_is_not_turned_into_a_timeout() -> None:
    task = asyncio.ensure_future(within(asyncio.sleep(30), 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_settled_waits_for_a_shared_future_without_ever_cancelling_it() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    assert await settled(fut, 0.01) is False  # the deadline: False, the future untouched
    assert not fut.done()
    loop.call_later(0.01, fut.set_result, 3)
    assert await settled(fut, 5) is True and fut.result() == 3
    assert await settled(fut, 0) is True  # already done: at once

    other: asyncio.Future[int] = loop.create_future()
    task = asyncio.ensure_future(settled(other, 30))
    await asyncio.sleep(0.01)
    task.cancel()  # the waiter goes away...
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not other.cancelled()  # ...the future stays, for its other waiters
    other.set_exception(ValueError("refused"))
    assert await settled(other, 1) is True  # an exception is an outcome too: the caller reads it
    with pytest.raises(ValueError):
        other.result()
