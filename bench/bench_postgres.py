"""The server benchmark (bench_server.py's figures) on PostgreSQL, with 1 and 2 replicas on one database.

Each run gets a fresh database on 127.0.0.1:5432 (trust auth, user postgres), dropped afterwards.
With 2 replicas, submits and executors are spread over both, and the wake-up latency is measured
across replicas: executors long-poll on replica B, the submits go to replica A (LISTEN/NOTIFY path).
Server CPU per operation counts the replicas' processes only (not PostgreSQL's backends).

    .venv/bin/python bench/bench_postgres.py [--submits 8000] [--replicas 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server as bs  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def cpu(pids: list[int]) -> float:
    return sum(bs.cpu_seconds(p) for p in pids)


async def spread(pids: list[int], jobs: list[Any], count_key: str) -> dict[str, Any]:
    """Run per-replica benchmark coroutines at once; one combined rate over the slowest's wall time."""
    cpu0 = cpu(pids)
    t0 = time.perf_counter()
    parts = await asyncio.gather(*jobs)
    dt = time.perf_counter() - t0
    ops = sum(p[count_key] for p in parts)
    res: dict[str, Any] = {count_key: ops, "seconds": dt, "per_second": ops / dt, "replicas": len(jobs)}
    used = cpu(pids) - cpu0
    if used > 0:
        res["server_cpu_us_per_op"] = used / ops * 1e6
        res["per_second_per_server_core"] = ops / used
    return res


async def run(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    procs: list[Any] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                for i in range(replicas):
                    procs.append(bs.start_server(str(Path(tmp) / f"replica{i}.db"), "NORMAL", url=url))
                return await _measure([port for _, port in procs], [p.pid for p, _ in procs], args)
            except Exception:
                for i in range(replicas):
                    log = Path(tmp) / f"replica{i}.log"
                    if log.exists():
                        print(log.read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                for p, _ in procs:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(15)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _measure(ports: list[int], pids: list[int], args: argparse.Namespace) -> dict[str, Any]:
    host, n, first, last = "127.0.0.1", len(ports), ports[0], ports[-1]
    c = await bs.Conn(host, first).open()
    one = await bs.add_executors(c, "bench1", 1)
    twenty = await bs.add_executors(c, "bench20", 20)
    c.close()
    res: dict[str, Any] = {"replicas": n}
    conns = max(1, args.connections // n)
    res["submit"] = await spread(pids, [bs.bench_submits(host, p, args.submits // n, conns, "bench1") for p in ports],
                                 "submits")
    # The one executor sits on the last replica; half the queue was submitted to the other one.
    res["assign_close_1"] = await spread(pids, [bs.bench_assign_close(host, last, one, args.submits // 4)],
                                         "processes")
    await spread(pids, [bs.bench_submits(host, p, args.submits // 4 // n, conns, "bench20") for p in ports], "submits")
    res["assign_close_20"] = await spread(
        pids, [bs.bench_assign_close(host, p, twenty[i::n], args.submits // 4) for i, p in enumerate(ports)],
        "processes")
    for n_exec in (1, 20):
        c = await bs.Conn(host, first).open()  # a fresh one: an idle connection hits the keep-alive timeout
        keys = await bs.add_executors(c, f"wake{n_exec}", n_exec)
        c.close()
        res[f"wakeup_{n_exec}"] = await bs.bench_wakeup(host, last, keys, f"wake{n_exec}", args.samples,
                                                        submit_port=first)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--submits", type=int, default=8000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(bs.ROOT / "bench" / "results" / "server_postgres.json"))
    args = ap.parse_args()
    bs.prepare_client()
    results = [asyncio.run(run(n, args)) for n in args.replicas]
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} on {os.cpu_count()} cores; replicas pinned to core 0, client on core 1, "
          "PostgreSQL unpinned")
    print(f"{'replicas':<10}{'submits/s':>11}{'a+c/s 1ex':>11}{'a+c/s 20ex':>12}"
          f"{'wake p50/p99 1ex ms':>22}{'wake p50/p99 20ex ms':>23}")
    for r in results:
        w1, w20 = r["wakeup_1"], r["wakeup_20"]
        print(f"{r['replicas']:<10}{r['submit']['per_second']:>11.0f}{r['assign_close_1']['per_second']:>11.0f}"
              f"{r['assign_close_20']['per_second']:>12.0f}"
              f"{w1['p50_ms']:>12.2f} / {w1['p99_ms']:<7.2f}{w20['p50_ms']:>13.2f} / {w20['p99_ms']:<7.2f}")
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "loadavg_at_end": load},
           "method": "as bench_server.py, on PostgreSQL 127.0.0.1:5432 (fresh database per run); replicas pinned to "
                     "core 0, client on core 1; with 2 replicas submits/executors are spread over both and the "
                     "wake-up is cross-replica (executors long-poll on B, submits go to A)",
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
