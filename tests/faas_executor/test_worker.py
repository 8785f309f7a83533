"""What a call returns, settled in the real sandboxed worker: coroutines run to completion on a
fresh event loop, generators and async generators become the list of what they yielded."""

from __future__ import annotations

import pytest

from faas_executor import sandbox
from faas_executor.handle import Reason
from faas_executor.pool import WorkerPool
from tests.faas_executor.conftest import pickled, source

CAPS = sandbox.detect()

ASYNC = """
    import asyncio, os
    LOOPS = []

    async def fetch(x):
        await asyncio.sleep(0.01)
        return x * 2

    async def gather(x):
        LOOPS.append(asyncio.get_running_loop())
        doubled = await asyncio.gather(*(fetch(i) for i in range(x)))
        # A thread of the loop's default executor, and the loop's self-pipe (a socketpair) waking it.
        summed = await asyncio.get_running_loop().run_in_executor(None, sum, doubled)
        previous_closed = len(LOOPS) > 1 and LOOPS[-2].is_closed() and LOOPS[-2] is not LOOPS[-1]
        return {"doubled": doubled, "sum": summed, "pid": os.getpid(), "previous_loop_closed": previous_closed}
"""


def test_an_async_function_runs_to_completion_in_the_warm_sandboxed_worker(pool: WorkerPool) -> None:
    b = source("gather", ASYNC)
    first = pool.run(b, [3], {}, timeout=30)
    assert first.ok, first.error
    assert first.value == {"doubled": [0, 2, 4], "sum": 6, "pid": first.value["pid"], "previous_loop_closed": False}
    second = pool.run(b, [], {"x": 2}, timeout=30)
    assert second.ok, second.error
    # The same warm worker, and each call got a loop of its own, closed when the call ended.
    assert second.value["pid"] == first.value["pid"]
    assert second.value["previous_loop_closed"] is True
    # With every layer this machine has: the loop needs epoll and an AF_UNIX socketpair, which
    # seccomp (inet sockets denied: no network here) and Landlock allow.
    layers = next(iter(pool.workers().values())).layers
    assert ("seccomp" in layers) == (CAPS.seccomp is None)
    assert ("landlock" in layers) == (CAPS.landlock_abi > 0)


def test_tasks_a_call_leaves_running_are_cancelled_when_it_ends(pool: WorkerPool) -> None:
    b = source("spawn", """
        import asyncio
        STATE = []

        async def forever():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                STATE.append("cancelled")
                raise

        async def spawn(start):
            if start:
                STATE.append(asyncio.get_running_loop().create_task(forever()))
                await asyncio.sleep(0)
                return "started"
            return STATE[1:]
    """)
    assert pool.run(b, [True], {}, timeout=30).value == "started"
    assert pool.run(b, [False], {}, timeout=30).value == ["cancelled"]


def test_an_exception_in_a_coroutine_becomes_its_traceback_text(pool: WorkerPool) -> None:
    b = source("boom", """
        import asyncio

        async def helper(x):
            await asyncio.sleep(0)
            raise ValueError(f"bad input {x}")

        async def boom(x):
            return await helper(x)
    """)
    out = pool.run(b, [7], {}, timeout=30)
    assert out.reason is Reason.ERROR
    assert out.error.startswith("Traceback (most recent call last):\n  File \"<faas:boom>\"")
    assert 'raise ValueError(f"bad input {x}")' in out.error
    assert out.error.rstrip().endswith("ValueError: bad input 7")
    # Neither the worker's frames nor asyncio's runner and loop are shown.
    assert "faas_executor" not in out.error and "asyncio/" not in out.error
    assert pool.run(b, [8], {}, timeout=30).reason is Reason.ERROR  # the worker survives


def test_a_function_returning_a_coroutine_and_a_pickled_async_closure_run(pool: WorkerPool) -> None:
    wrapped = source("wrapped", """
        import asyncio

        async def _inner(x):
            await asyncio.sleep(0)
            return x + 1

        def wrapped(x):
            return _inner(x)
    """)
    assert pool.run(wrapped, [1], {}, timeout=30).value == 2
    offset = 32

    async def convert(celsius: float) -> float:
        return celsius * 9 / 5 + offset

    assert pool.run(pickled("convert", convert), [21.0], {}, timeout=30).value == pytest.approx(69.8)


@pytest.mark.parametrize("code", [
    "def squares(n):\n    for i in range(n):\n        yield {'i': i, 'sq': i * i}\n",
    "import asyncio\n\nasync def squares(n):\n    for i in range(n):\n        await asyncio.sleep(0)\n"
    "        yield {'i': i, 'sq': i * i}\n",
], ids=["generator", "async generator"])
def test_a_generators_result_is_the_list_of_what_it_yielded(pool: WorkerPool, code: str) -> None:
    b = source("squares", code)
    assert pool.run(b, [3], {}, timeout=30).value == [{"i": 0, "sq": 0}, {"i": 1, "sq": 1}, {"i": 2, "sq": 4}]
    assert pool.run(b, [0], {}, timeout=30).value == []


@pytest.mark.parametrize("code", [
    "def items(n):\n    yield 1\n    raise KeyError(f'no item {n}')\n",
    "async def items(n):\n    yield 1\n    raise KeyError(f'no item {n}')\n",
], ids=["generator", "async generator"])
def test_a_generator_that_raises_fails_with_its_traceback(pool: WorkerPool, code: str) -> None:
    out = pool.run(source("items", code), [2], {}, timeout=30)
    assert out.reason is Reason.ERROR
    assert out.error.startswith("Traceback (most recent call last):\n  File \"<faas:items>\"")
    assert out.error.rstrip().endswith("KeyError: 'no item 2'")
    assert "faas_executor" not in out.error


@pytest.mark.parametrize("code", [
    """
    CLOSED = []

    def endless(report):
        if report:
            yield len(CLOSED)
            return
        try:
            while True:
                yield "x" * 4096
        finally:
            CLOSED.append(True)
    """,
    """
    CLOSED = []

    async def endless(report):
        if report:
            yield len(CLOSED)
            return
        try:
            while True:
                yield "x" * 4096
        finally:
            CLOSED.append(True)
    """,
], ids=["generator", "async generator"])
def test_an_endless_generator_stops_at_the_result_limit_and_is_closed(pool: WorkerPool, code: str) -> None:
    b = source("endless", code)
    # Stopped once past the limit, not left to fill memory until the call's timeout.
    out = pool.run(b, [False], {}, timeout=60)
    assert out.reason is Reason.SERIALIZE
    assert out.error.startswith("endless() yielded more than 8 MiB of JSON (stopped at item 2")
    assert "a result is limited to 8 MiB" in out.error
    assert pool.run(b, [True], {}, timeout=30).value == [1]  # its finally block ran


def test_a_yielded_value_that_is_not_json_fails_naming_it(pool: WorkerPool) -> None:
    b = source("mixed", "def mixed():\n    yield 1\n    yield {1, 2}\n")
    out = pool.run(b, [], {}, timeout=30)
    assert out.reason is Reason.SERIALIZE
    assert out.error.startswith("mixed() yielded a builtins.set (item 1), which is not JSON-serializable")


def test_a_generator_result_is_exactly_the_json_of_its_list(pool: WorkerPool) -> None:
    values = [1, 2.5, "ü\n", None, True, [1, {"a": [2]}], {"k": "v"}]
    b = source("echo", "def echo(values):\n    yield from values\n")
    assert pool.run(b, [values], {}, timeout=30).value == values
