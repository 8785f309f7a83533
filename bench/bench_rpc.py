"""RPC round trips per second against our server: sync and async SDK clients, 1 and N concurrent,
with pycolonies 1.0.25 (requests + pure-Python signing) as the baseline in the same run.

Run: .venv/bin/python bench/bench_rpc.py [--seconds 6] [--rounds 6] [--concurrency 16]
Starts `python -m colonies_server start --dev` (SQLite in a temp dir) as a subprocess, pinned to
the last CPU when there is more than one (the benchmark runs on the others). Writes
bench/results/bench_rpc.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdk import AsyncColonies, Colonies  # noqa: E402
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ProcessServer  # noqa: E402


def pin(pid: int, cpus: set[int]) -> None:
    if hasattr(os, "sched_setaffinity") and cpus:
        os.sched_setaffinity(pid, cpus)


def sync_rate(calls: list[Callable[[], Any]], seconds: float) -> tuple[float, int]:
    """Each callable loops on its own thread until the deadline; total completed calls per second."""
    for call in calls:
        call()  # warm-up: connection open, caches filled
    counts = [0] * len(calls)
    start = time.perf_counter()
    deadline = start + seconds

    def loop(i: int) -> None:
        call = calls[i]
        while time.perf_counter() < deadline:
            call()
            counts[i] += 1

    if len(calls) == 1:
        loop(0)
    else:
        threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = sum(counts)
    return total / (time.perf_counter() - start), total


async def async_rate(client: AsyncColonies, concurrency: int, seconds: float) -> tuple[float, int]:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def loop() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await client.get_colony(DEV_COLONY)
            count += 1

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return count / (time.perf_counter() - start), count


async def measure(host: str, port: int, n: int, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds of every row (load drift on a shared machine then hits all rows alike);
    per row: [calls, seconds]."""
    from pycolonies import Colonies as PyColonies

    pc = PyColonies(host, port)
    totals: dict[str, list[float]] = {}
    with Colonies(host, port, prvkey=DEV_PRVKEY) as c:
        async with AsyncColonies(host, port, prvkey=DEV_PRVKEY) as ac:
            await ac.get_colony(DEV_COLONY)  # warm-up: connection open, caches filled
            rows: dict[str, Callable[[float], Any]] = {
                "pycolonies x1 (baseline)": lambda t: sync_rate([lambda: pc.get_colony(DEV_COLONY, DEV_PRVKEY)], t),
                "sync x1": lambda t: sync_rate([lambda: c.get_colony(DEV_COLONY)], t),
                f"sync x{n} (threads, one client)": lambda t: sync_rate([lambda: c.get_colony(DEV_COLONY)] * n, t),
                "async x1": lambda t: async_rate(ac, 1, t),
                f"async x{n}": lambda t: async_rate(ac, n, t),
            }
            for _ in range(rounds):
                for name, row in rows.items():
                    got = row(seconds / rounds)
                    per_s, calls = (await got) if asyncio.iscoroutine(got) else got
                    total = totals.setdefault(name, [0.0, 0.0])
                    total[0] += calls
                    total[1] += calls / per_s
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time per row")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="N for the concurrent rows")
    args = parser.parse_args()
    n = args.concurrency

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpus, client_cpus = ({cpus[-1]}, set(cpus[:-1])) if len(cpus) > 1 else (set(), set())

    with tempfile.TemporaryDirectory() as tmp:
        srv = ProcessServer(db=f"sqlite:///{tmp}/bench.db", dev=True, log=Path(tmp) / "server.log")
        handle = srv.start()
        try:
            assert srv.proc is not None
            pin(srv.proc.pid, server_cpus)
            pin(0, client_cpus)
            totals = asyncio.run(measure(handle.host, handle.port, n, args.seconds, args.rounds))
        finally:
            srv.stop()

    rates = {name: calls / secs for name, (calls, secs) in totals.items()}
    base = rates["pycolonies x1 (baseline)"]
    print(f"{'client':<34}{'round trips/s':>15}{'vs pycolonies':>15}")
    results = {}
    for name, per_s in rates.items():
        print(f"{name:<34}{per_s:>15,.0f}{per_s / base:>14.1f}x")
        results[name] = {"per_s": round(per_s, 1), "calls": int(totals[name][0]),
                         "vs_pycolonies": round(per_s / base, 2)}
    out = {
        "benchmark": "bench_rpc",
        "call": "getcolonymsg (signed, membership check, one DB read)",
        "seconds_per_row": args.seconds,
        "rounds": args.rounds,
        "results": results,
        "server": "python -m colonies_server start --dev (SQLite)",
        "pinning": {"server_cpus": sorted(server_cpus), "client_cpus": sorted(client_cpus)},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    # Other work on a shared machine skews absolute numbers; the ratios are same-run.
                    "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = ROOT / "bench" / "results" / "bench_rpc.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
