"""The warm pool with real worker processes: results, failures, limits, logs, reuse, nested calls."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from faas_executor.api import RemoteCallError
from faas_executor.handle import Reason
from faas_executor.pool import Decision, Slots, WorkerPool
from tests.faas_executor.conftest import PoolFactory, pickled, source

# ---- pure bookkeeping ---------------------------------------------------------------------------

A1, A2, B1 = ("a", "1"), ("a", "2"), ("b", "1")


def test_slots_reuse_the_warm_worker_of_the_same_version() -> None:
    s = Slots(2)
    assert s.acquire(A1) == Decision(0, reuse=False)
    s.release(0, keep=True)
    assert s.acquire(A1) == Decision(0, reuse=True)


def test_slots_fill_empty_slots_then_evict_the_least_recently_used() -> None:
    s = Slots(2)
    s.acquire(A1)
    s.release(0, keep=True)
    s.acquire(B1)
    s.release(1, keep=True)
    s.acquire(A1)  # slot 0 used again: slot 1 is now least recently used
    s.release(0, keep=True)
    assert s.acquire(("c", "1")) == Decision(1, reuse=False, evict=True)


def test_slots_retire_idle_older_versions_of_a_redeployed_function() -> None:
    s = Slots(3)
    s.acquire(A1)
    s.release(0, keep=True)
    assert s.acquire(A2) == Decision(0, reuse=False, retire=(0,))  # the freed slot is reused
    assert s.warm() == [A2]


def test_slots_say_none_when_all_are_busy_and_free_a_dropped_worker() -> None:
    s = Slots(1)
    s.acquire(A1)
    assert s.acquire(B1) is None
    s.release(0, keep=False)
    assert s.acquire(A1) == Decision(0, reuse=False)


def test_nested_calls_may_add_overflow_slots_up_to_a_bound() -> None:
    s = Slots(1)
    s.acquire(A1)
    assert s.acquire(B1) is None
    assert s.acquire(B1, overflow=1) == Decision(1, reuse=False)
    assert s.acquire(("c", "1"), overflow=1) is None
    s.release(1, keep=True)
    assert s.acquire(B1) == Decision(1, reuse=True)  # the overflow worker stays warm


def test_a_pre_started_worker_takes_the_first_function_that_fits_its_policy() -> None:
    s = Slots(2)
    assert s.reserve_empty() == [0, 1]
    s.release(0, keep=True)
    s.release(1, keep=True)
    assert s.warm() == []
    assert s.acquire(A1, blank_ok=True) == Decision(0, reuse=False, load=True)
    # A function needing another policy (memory cap, network) replaces a pre-started worker.
    assert s.acquire(B1, blank_ok=False) == Decision(1, reuse=False, evict=True)


def test_slots_need_a_size() -> None:
    with pytest.raises(ValueError):
        Slots(0)


# ---- real workers -------------------------------------------------------------------------------

CONVERT = """
    import os
    LOADED_IN = os.getpid()
    CALLS = 0

    def convert(celsius):
        global CALLS
        CALLS += 1
        return {"f": celsius * 9 / 5 + 32, "pid": LOADED_IN, "calls": CALLS}
"""


def test_a_call_returns_the_value_and_the_worker_stays_warm(pool: WorkerPool) -> None:
    b = source("convert", CONVERT)
    first = pool.run(b, [21.0], {}, timeout=30)
    second = pool.run(b, [], {"celsius": 100}, timeout=30)
    assert first.ok and second.ok
    assert first.value["f"] == pytest.approx(69.8)
    assert second.value["f"] == 212
    # Same process, module loaded once: the second call saw the first one's state.
    assert second.value["pid"] == first.value["pid"]
    assert second.value["calls"] == 2


def test_cloudpickled_closure_runs(pool: WorkerPool) -> None:
    offset = 32

    def convert(c: float) -> float:
        return c * 9 / 5 + offset

    assert pool.run(pickled("convert", convert), [21.0], {}, timeout=30).value == pytest.approx(69.8)


def test_bare_tutorial_source_runs(pool: WorkerPool) -> None:
    from faas_executor.bundle import parse_bundle

    b = parse_bundle("convert", b"def convert(celsius):\n    return (celsius * 9/5) + 32\n")
    assert pool.run(b, [21.0], {}, timeout=30).value == pytest.approx(69.8)


def test_an_exception_becomes_its_traceback_text(pool: WorkerPool) -> None:
    b = source("boom", """
        def helper(x):
            raise ValueError(f"bad input {x}")

        def boom(x):
            return helper(x)
    """)
    out = pool.run(b, [7], {}, timeout=30)
    assert out.reason is Reason.ERROR
    assert out.error.startswith("Traceback (most recent call last):")
    assert 'raise ValueError(f"bad input {x}")' in out.error
    assert "<faas:boom>" in out.error
    assert out.error.rstrip().endswith("ValueError: bad input 7")
    assert "faas_executor" not in out.error  # the worker's own frames are not shown
    assert pool.run(b, [8], {}, timeout=30).reason is Reason.ERROR  # the worker survives


def test_non_json_result_fails_naming_the_type(pool: WorkerPool) -> None:
    b = source("sets", """
        def sets():
            return {1, 2}
    """)
    out = pool.run(b, [], {}, timeout=30)
    assert out.reason is Reason.SERIALIZE
    assert "builtins.set" in out.error and "not JSON-serializable" in out.error


def test_a_result_too_large_to_deliver_fails_the_call_saying_so(pool: WorkerPool) -> None:
    # 20 MiB of JSON cannot ride in a close message (the server refuses bodies over 16 MiB): it was
    # retried as an outage, then dropped, and the process stayed RUNNING.
    b = source("big", """
        def big(mb):
            return "x" * (mb << 20)
    """)
    out = pool.run(b, [20], {}, timeout=60)
    assert out.reason is Reason.SERIALIZE and "20.0 MiB of JSON" in out.error and "limited to 8 MiB" in out.error
    small = pool.run(b, [1], {}, timeout=60)
    assert small.ok and len(small.value) == 1 << 20


def test_a_load_error_fails_the_call_with_the_traceback(pool: WorkerPool) -> None:
    out = pool.run(source("broken", "def broken(:\n"), [], {}, timeout=30)
    assert out.reason is Reason.LOAD
    assert "SyntaxError" in out.error
    missing = pool.run(source("nothere", "def other(): pass\n"), [], {}, timeout=30)
    assert missing.reason is Reason.LOAD and "defines no function 'nothere'" in missing.error


def test_an_infinite_loop_times_out_and_the_worker_is_replaced(pool: WorkerPool) -> None:
    b = source("spin", """
        import os
        def spin(forever):
            while forever:
                pass
            return os.getpid()
    """)
    before = pool.run(b, [False], {}, timeout=30)
    out = pool.run(b, [True], {}, timeout=0.5)
    assert out.reason is Reason.TIMEOUT
    assert out.error == "timed out after 0.5 s"
    after = pool.run(b, [False], {}, timeout=30)
    assert after.ok and after.value != before.value


def test_cpu_time_cap_kills_the_worker(make_pool: PoolFactory) -> None:
    pool = make_pool(cpu_seconds=1)
    b = source("burn", """
        def burn():
            while True:
                pass
    """)
    out = pool.run(b, [], {}, timeout=60)
    assert out.reason is Reason.CPU
    assert out.error == "worker killed: CPU time limit 1 s exceeded"


def test_allocating_past_the_memory_cap_fails_and_replaces_the_worker(make_pool: PoolFactory) -> None:
    pool = make_pool(memory_mb=256)
    b = source("hog", """
        import os
        def hog(gib):
            block = bytearray(gib << 30)
            return [len(block), os.getpid()]
    """)
    out = pool.run(b, [2], {}, timeout=60)
    assert out.reason is Reason.MEMORY
    assert out.error.startswith("worker killed: memory limit 256 MiB exceeded")
    assert not pool.workers()
    assert pool.run(b, [0], {}, timeout=30).ok


@pytest.mark.parametrize(("code", "message"), [
    ("import os\ndef die():\n    os._exit(7)\n", "worker crashed: exited with code 7"),
    ("import ctypes\ndef die():\n    ctypes.string_at(0)\n", "worker crashed: signal 11 (SIGSEGV)"),
])
def test_a_crash_names_the_exit(pool: WorkerPool, code: str, message: str) -> None:
    out = pool.run(source("die", code), [], {}, timeout=30)
    assert out.reason is Reason.CRASH
    assert out.error == message
    assert not pool.workers()


def test_printed_lines_arrive_while_the_call_runs(pool: WorkerPool) -> None:
    # The function waits for a file the log sink creates on seeing its first line: the call can
    # only finish if that line reached the parent while the function was still running.
    b = source("chatty", """
        import os, sys
        def chatty():
            print("first")
            print("to stderr", file=sys.stderr)
            while not os.path.exists("go"):
                pass
            print("last", end="")
            return "done"
    """)
    got: list[tuple[str, str]] = []

    def sink(stream: str, text: str) -> None:
        got.append((stream, text))
        if text == "first\n":
            (Path(next(iter(pool.workers().values())).policy.scratch) / "call" / "go").touch()

    out = pool.run(b, [], {}, timeout=30, on_log=sink)
    assert out.value == "done"
    assert ("stdout", "first\n") in got and ("stderr", "to stderr\n") in got
    assert got[-1] == ("stdout", "last")


def test_two_calls_run_at_once_in_two_workers(pool: WorkerPool) -> None:
    # Each call marks its slot dir and waits for both marks: with fewer than two workers running
    # at once they would wait for each other until the timeout.
    b = source("meet", """
        import os
        def meet(marks):
            open(os.path.join(os.path.dirname(os.getcwd()), "here"), "w").close()
            while not all(os.path.exists(m) for m in marks):
                pass
            return os.getpid()
    """)
    marks = [str(Path(pool.settings.scratch_root) / f"slot-{i}" / "here") for i in range(2)]
    results: list[Any] = []

    def run() -> None:
        results.append(pool.run(b, [marks], {}, timeout=30))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.ok for o in results), results
    assert results[0].value != results[1].value


def test_calls_queued_for_a_busy_pool_each_get_the_worker_as_it_frees(make_pool: PoolFactory) -> None:
    # One worker, eight calls at once: each freed slot wakes one waiting call (not all of them),
    # so a wake-up that went to nobody would leave the rest waiting until their 10 s ran out.
    pool = make_pool(size=1)
    b = source("nap", """
        import time
        def nap(i):
            time.sleep(0.02)
            return i
    """)
    results: list[Any] = []

    def run(i: int) -> None:
        results.append(pool.run(b, [i], {}, timeout=10))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(o.ok for o in results) and sorted(o.value for o in results) == list(range(8)), results
    assert len(pool.workers()) == 1  # one warm worker ran them all


def test_close_waits_for_the_running_call_and_refuses_the_waiting_ones(make_pool: PoolFactory) -> None:
    pool = make_pool(size=1)
    b = source("slow", """
        import time
        def slow():
            time.sleep(0.5)
            return "done"
    """)
    outcomes: list[Any] = []
    refused: list[BaseException] = []

    def run() -> None:
        try:
            outcomes.append(pool.run(b, [], {}, timeout=20))
        except RuntimeError as e:
            refused.append(e)

    first = threading.Thread(target=run)
    first.start()
    deadline = time.monotonic() + 10
    while not any(s.busy for s in pool._slots.slots) and time.monotonic() < deadline:
        time.sleep(0.005)
    waiting = threading.Thread(target=run)  # finds the only slot busy and waits for it
    waiting.start()
    time.sleep(0.1)
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(15)  # the running call's end must wake close() too, not only the waiting call
    assert not closer.is_alive(), "close() still waiting after the running call ended"
    first.join(5)
    waiting.join(5)
    assert [o.value for o in outcomes] == ["done"]
    assert [str(e) for e in refused] == ["worker pool is closed"]


def test_a_new_version_is_loaded_and_the_old_worker_retired(pool: WorkerPool) -> None:
    v1 = source("ver", "def ver():\n    return 1\n")
    v2 = source("ver", "def ver():\n    return 2\n")
    assert pool.run(v1, [], {}, timeout=30).value == 1
    assert pool.run(v2, [], {}, timeout=30).value == 2
    assert pool.warm_keys() == [v2.key]


def test_nested_calls_go_through_the_parent_hook(make_pool: PoolFactory) -> None:
    seen: list[tuple[str, list[Any], dict[str, Any]]] = []

    def hook(name: str, args: list[Any], kwargs: dict[str, Any], timeout: float) -> Any:
        seen.append((name, args, kwargs))
        assert 0 < timeout <= 30
        if name == "missing":
            raise LookupError("function 'missing' is not deployed")
        return 42

    pool = make_pool(nested=hook)
    b = source("outer", """
        from faas_executor.api import RemoteCallError, call
        def outer():
            try:
                call("missing")
            except RemoteCallError as e:
                err = str(e)
            return [call("inner", 1, unit="C") + 1, err]
    """)
    out = pool.run(b, [], {}, timeout=30)
    assert out.value == [43, "function 'missing' is not deployed"]
    assert seen == [("missing", [], {}), ("inner", [1], {"unit": "C"})]


def test_acall_lets_the_async_callers_loop_run_while_it_waits(make_pool: PoolFactory) -> None:
    def hook(name: str, args: list[Any], kwargs: dict[str, Any], timeout: float) -> Any:
        time.sleep(0.3)  # a slow callee
        return args[0] * 2

    pool = make_pool(nested=hook)
    b = source("outer", """
        import asyncio
        from faas_executor.api import acall

        async def outer():
            ticks = 0

            async def tick():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            doubled = await acall("double", 21)
            ticker.cancel()
            return [doubled, ticks]
    """)
    out = pool.run(b, [], {}, timeout=30)
    assert out.ok, out.error
    doubled, ticks = out.value
    assert doubled == 42
    assert ticks >= 5  # the loop kept running through the 0.3 s wait (a plain call() gives 0)


def test_nested_call_without_a_hook_fails_in_user_code(pool: WorkerPool) -> None:
    b = source("outer", """
        from faas_executor.api import call
        def outer():
            return call("inner")
    """)
    out = pool.run(b, [], {}, timeout=30)
    assert out.reason is Reason.ERROR and "nested calls are not enabled" in out.error


def test_api_call_outside_a_worker_says_so() -> None:
    from faas_executor import api

    with pytest.raises(RuntimeError, match="only inside a colonyfaas worker"):
        api.call("x")
    with pytest.raises(RuntimeError, match="only inside a colonyfaas worker"):
        asyncio.run(api.acall("x"))
    assert issubclass(RemoteCallError, Exception)


def test_user_code_cannot_read_or_forge_the_protocol(pool: WorkerPool) -> None:
    reader = source("reader", """
        import sys
        def reader():
            return sys.stdin.read()
    """)
    assert pool.run(reader, [], {}, timeout=30).value == ""  # stdin is /dev/null, not the request pipe
    forger = source("forger", """
        import os, sys
        def forger():
            os.write(int(sys.argv[1]), b"\\xff\\xff\\xff\\xff garbage")
            while True:
                pass
    """)
    out = pool.run(forger, [], {}, timeout=30)
    assert out.reason is Reason.CRASH and "malformed message" in out.error
    assert pool.run(reader, [], {}, timeout=30).ok


def test_a_worker_that_stops_reading_cannot_block_the_executor(make_pool: PoolFactory) -> None:
    # User code asks for a nested call by hand, then never reads the (large) answer.
    pool = make_pool(nested=lambda name, args, kwargs, timeout: "x" * 1_000_000)
    b = source("deaf", """
        import os, sys, json, struct
        def deaf():
            body = json.dumps({"ev": "call", "name": "big", "args": [], "kwargs": {}}).encode()
            os.write(int(sys.argv[1]), struct.pack(">I", len(body)) + body)
            while True:
                pass
    """)
    out = pool.run(b, [], {}, timeout=1.0)
    assert out.reason is Reason.TIMEOUT and out.error == "timed out after 1 s"


def test_pre_started_workers_serve_first_calls_without_a_new_process(pool: WorkerPool) -> None:
    assert pool.prestart() == 2
    prestarted = {w.pid for w in pool.workers().values()}
    assert len(prestarted) == 2 and all(w.bundle is None for w in pool.workers().values())
    out = pool.run(source("convert", CONVERT), [21.0], {}, timeout=30)
    assert out.ok and out.value["pid"] in prestarted
    # Another memory cap is another sandbox policy: that function gets a fresh worker.
    other = pool.run(source("capped", "import os\ndef capped():\n    return os.getpid()\n",
                            limits={"memory_mb": 128}), [], {}, timeout=30)
    assert other.ok and other.value not in prestarted
    broken = pool.run(source("broken", "def broken(:\n"), [], {}, timeout=30)
    assert broken.reason is Reason.LOAD and "SyntaxError" in broken.error


def test_calls_are_short_only_once_calls_ended_quickly_and_none_is_running_long(pool: WorkerPool) -> None:
    quick = source("convert", CONVERT)
    assert not pool.calls_are_short(0.5)  # nothing known before a call has ended
    for _ in range(10):  # the first one also starts the worker
        assert pool.run(quick, [21.0], {}, timeout=30).ok
    assert pool.calls_are_short(0.5)

    slow = source("slow", """
        import time
        def slow(s):
            time.sleep(s)
            return s
    """)
    running = threading.Thread(target=pool.run, args=(slow, [1.5], {}, 30))
    running.start()
    try:
        deadline = time.monotonic() + 10
        while pool.calls_are_short(0.5) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The running call passed the horizon: it no longer counts as short while it runs...
        assert not pool.calls_are_short(0.5)
    finally:
        running.join()
    # ...and once it ended, its 1.5 s weigh on the average (a fifth of it: above 0.25 s).
    assert not pool.calls_are_short(0.25)
    assert pool.calls_are_short(5.0)
