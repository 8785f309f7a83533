"""Executor benchmark: the per-call cost of running user code, sandboxed, against baselines in one run.

Measured for the same function (`convert(celsius)`), each `--calls` times (median, p90, p99):

- bare: a plain in-process call (the floor; no isolation at all);
- warm: `WorkerPool.run` on a warm worker that was sandboxed once (every layer this machine has),
  i.e. what the executor pays per call: a pipe round trip, JSON framing, per-call scratch dir and
  CPU-limit bookkeeping;
- fork: a fresh `os.fork()` per call that runs the function and returns the result on a pipe
  (no sandbox), and fork+sandbox: the same with rlimits, caps/uid drop, Landlock and seccomp
  applied in the child per call (the "isolate per call" design the warm pool avoids);
- cold: starting one sandboxed worker (interpreter start, imports, sandbox, load) — paid once per
  (function, version) and slot; prestarted_first_call: the first call into a worker the executor
  pre-started (only the function's load is left).

    .venv/bin/python bench/bench_executor.py [--calls 2000] [--cold 10]

Writes bench/results/executor.json and prints a table. Ratios are against bare and warm of the
same run, so they hold across machines better than the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faas_executor import sandbox  # noqa: E402
from faas_executor.bundle import parse_bundle  # noqa: E402
from faas_executor.pool import PoolSettings, WorkerPool  # noqa: E402

SOURCE = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"


def convert(celsius: float) -> float:
    return (celsius * 9 / 5) + 32


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

    return {"median_us": round(statistics.median(ordered) * 1e6, 2), "p90_us": round(pct(0.9) * 1e6, 2),
            "p99_us": round(pct(0.99) * 1e6, 2), "n": len(ordered)}


def timed(n: int, fn: Callable[[], Any]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def fork_call(policy: sandbox.Policy | None) -> float:
    """One call in a fresh fork (optionally sandboxed first); the result comes back on a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            if policy is not None:
                sandbox.apply(policy)
            os.write(w, json.dumps(convert(21.0)).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 4096)
    os.close(r)
    os.waitpid(pid, 0)
    return float(json.loads(data))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--cold", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "executor.json"))
    args = ap.parse_args()

    bundle = parse_bundle("convert", SOURCE.encode())
    results: dict[str, Any] = {}
    cpu: dict[str, float] = {}  # CPU µs per call, caller + worker/child: insensitive to a busy machine
    with tempfile.TemporaryDirectory() as tmp:
        settings = PoolSettings(scratch_root=str(Path(tmp) / "scratch"), size=1, uid_base=64700)
        with WorkerPool(settings) as pool:
            layers_line = pool.describe()
            assert pool.run(bundle, [21.0], {}, 30).value == convert(21.0)  # warm it up
            layers = next(iter(pool.workers().values())).layers
            results["bare"] = summary(timed(args.calls * 10, lambda: convert(21.0)))
            worker = next(iter(pool.workers().values()))
            cpu0, wcpu0 = cpu_self(), worker.cpu_used
            results["warm"] = summary(timed(args.calls, lambda: pool.run(bundle, [21.0], {}, 30)))
            cpu["warm"] = round(((cpu_self() - cpu0) + (worker.cpu_used - wcpu0)) / args.calls * 1e6, 1)
            # The fork paths sandbox themselves with the same policy a worker gets (same layers).
            policy = pool._policy_for(0, bundle)
            Path(policy.scratch).mkdir(exist_ok=True)
            n_fork = max(50, args.calls // 10)
            no_ns = sandbox.Policy(**{**policy.to_wire(), "namespaces": False,
                                      "read_paths": policy.read_paths})
            for name, pol, n in (("fork", None, n_fork), ("fork_sandboxed", no_ns, n_fork),
                                 ("fork_sandboxed_netns", policy, max(20, n_fork // 5))):
                cpu0, ccpu0 = cpu_self(), cpu_children()
                results[name] = summary(timed(n, lambda pol=pol: fork_call(pol)))
                cpu[name] = round(((cpu_self() - cpu0) + (cpu_children() - ccpu0)) / n * 1e6, 1)

        def cold() -> None:
            with WorkerPool(PoolSettings(scratch_root=str(Path(tmp) / "cold"), size=1, uid_base=64700)) as p:
                assert p.run(bundle, [21.0], {}, 30).ok

        results["cold_start"] = summary(timed(args.cold, cold))

        first: list[float] = []
        for _ in range(args.cold):
            with WorkerPool(PoolSettings(scratch_root=str(Path(tmp) / "pre"), size=1, uid_base=64700)) as p:
                p.prestart()
                t = time.perf_counter()
                assert p.run(bundle, [21.0], {}, 30).ok
                first.append(time.perf_counter() - t)
        results["prestarted_first_call"] = summary(first)

    warm = results["warm"]["median_us"]
    bare = results["bare"]["median_us"]
    ratios = {
        "cpu_fork_over_warm": round(cpu["fork"] / cpu["warm"], 2),
        "cpu_fork_sandboxed_over_warm": round(cpu["fork_sandboxed"] / cpu["warm"], 2),
        "warm_over_bare": round(warm / bare, 1),
        "fork_over_warm": round(results["fork"]["median_us"] / warm, 2),
        "fork_sandboxed_over_warm": round(results["fork_sandboxed"]["median_us"] / warm, 2),
        "fork_sandboxed_netns_over_warm": round(results["fork_sandboxed_netns"]["median_us"] / warm, 2),
        "cold_start_over_warm": round(results["cold_start"]["median_us"] / warm, 1),
        "prestarted_first_call_over_warm": round(results["prestarted_first_call"]["median_us"] / warm, 1),
    }
    doc = {
        "benchmark": "executor per-call overhead",
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "root": os.geteuid() == 0,
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "sandbox": layers_line,
        "worker_layers": layers,
        "results": results,
        "cpu_us_per_call": cpu,
        "ratios": ratios,
        "notes": "fork_sandboxed = fork + rlimits + caps/uid drop + Landlock + seccomp per call; "
                 "_netns adds a fresh network/ipc/uts namespace per call, as a worker has.",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(layers_line)
    print(f"{'path':<24}{'median µs':>12}{'p90 µs':>12}{'p99 µs':>12}{'n':>8}")
    for name, r in results.items():
        print(f"{name:<24}{r['median_us']:>12}{r['p90_us']:>12}{r['p99_us']:>12}{r['n']:>8}")
    print("CPU µs per call (caller + worker/child):", json.dumps(cpu))
    print("ratios:", json.dumps(ratios))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
