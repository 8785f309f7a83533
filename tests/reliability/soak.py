"""Soak: a steady rate of calls through the gateway with 2 executors, memory sampled throughout.

    python -m tests.reliability.soak --minutes 10          # the full run (scripts/soak.sh)
    python -m tests.reliability.soak --seconds 45 --json   # what CI runs, via test_soak.py

A whole stack (tests/reliability/stack.py) is started in a temporary directory; after a warm-up
the resident memory (VmRSS) of the server, the gateway, each executor and the sum of the
executors' workers is the baseline; it is sampled every few seconds until the end. The run
passes when every call was answered correctly (nothing lost, duplicated, wrong, failed or
refused) and no component grew by more than its bound over its baseline:

* server: 64 MiB. Its SQLite store keeps a page cache of up to 8 MiB per connection
  (`PRAGMA cache_size=-8192`; one connection with the default synchronous=NORMAL, a second one for
  reads with FULL) that fills as the database grows, plus bounded in-process caches (signature
  recovery ≤ 10,000 envelopes, parsed times ≤ 100,000 strings, together ≲ 20 MiB); a leak of 3 KiB per call
  would take it past the bound within the 15,000 calls of a 10-minute run.
* gateway, each executor, the executors' workers together: 48 MiB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .conftest import FUNCTIONS
from .load import Load, tally, unfinished
from .stack import Stack, descendants, rss_kib, wait_until

DEFAULT_BOUND_MIB = 48
SERVER_BOUND_MIB = 64


@dataclass
class SoakResult:
    seconds: float
    rate: float
    calls: dict[str, Any]
    rss_mib: dict[str, dict[str, float]]
    bound_mib: float
    samples: list[dict[str, float]] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    def problems(self) -> list[str]:
        out = []
        calls = self.calls
        for key in ("lost", "duplicated", "wrong", "unclean", "failed", "refused"):
            if calls[key]:
                out.append(f"{calls[key]} {key}")
        if calls["answered"] != calls["sent"]:
            out.append(f"only {calls['answered']} of {calls['sent']} calls answered")
        for name, r in self.rss_mib.items():
            bound = SERVER_BOUND_MIB if name == "server" else self.bound_mib
            if r["growth"] > bound:
                out.append(f"{name} RSS grew {r['growth']:.1f} MiB (bound {bound} MiB)")
        return out


def sample(stack: Stack) -> dict[str, float]:
    out = {"server": rss_kib(stack.server.pid) / 1024, "gateway": rss_kib(stack.gateway.pid) / 1024}
    workers = 0.0
    for name, ex in stack.executors.items():
        out[name] = rss_kib(ex.pid) / 1024
        workers += sum(rss_kib(pid) for pid in descendants(ex.pid)) / 1024
    out["workers (sum)"] = workers
    return {k: round(v, 1) for k, v in out.items()}


def run_soak(root: Path, seconds: float, rate: float = 25.0, concurrency: int = 8, warmup: float = 10.0,
             every: float = 5.0, bound_mib: float = DEFAULT_BOUND_MIB, say: Any = print,
             unix_socket: bool = False) -> SoakResult:
    stack = Stack(root, executors=2, unix_socket=unix_socket)
    try:
        stack.start(deploy=FUNCTIONS)
        say(f"stack up: gateway {stack.url}, server {stack.server_url}; {rate}/s for {seconds:.0f}s")
        load = Load(stack.url, concurrency=concurrency, rate=rate, delay=0.01, max_calls=int(rate * (seconds + warmup) * 2),
                    max_seconds=warmup + seconds, tag="soak", idempotency=False).start()
        samples: list[dict[str, float]] = []
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < warmup and load.error is None:
                time.sleep(0.2)
            baseline = sample(stack)
            start = time.monotonic()
            next_at = start
            while time.monotonic() - start < seconds and load.error is None:
                if time.monotonic() >= next_at:
                    s = sample(stack)
                    s["t"] = round(time.monotonic() - start, 1)
                    samples.append(s)
                    say(f"  t={s['t']:>6.1f}s calls={load.finished} " + " ".join(
                        f"{k}={v}" for k, v in s.items() if k != "t"))
                    next_at += every
                time.sleep(0.2)
            end = sample(stack)
        finally:
            load.stop()
        wait_until(lambda: unfinished(stack.processes()) == 0, 60, "the last calls to end")
        t = tally(load, stack.processes())
        lat = sorted(r.latency for r in load.records.values() if r.status == "ok")
        peak = {k: max(s.get(k, 0.0) for s in [baseline, *samples, end]) for k in baseline}
        return SoakResult(
            seconds=seconds, rate=rate,
            calls={"sent": t.sent, "answered": t.answered, "lost": t.lost, "duplicated": t.duplicated,
                   "wrong": t.wrong, "unclean": t.unclean, "failed": t.failed_answers, "refused": t.refused,
                   "errors_seen": t.errors_seen, "achieved_rate": round(t.sent / (warmup + seconds), 1)},
            rss_mib={k: {"baseline": baseline[k], "end": end[k], "peak": round(peak[k], 1),
                         "growth": round(end[k] - baseline[k], 1)} for k in baseline},
            bound_mib=bound_mib, samples=samples,
            latency_ms={"p50": round(1000 * lat[len(lat) // 2], 1), "p99": round(1000 * lat[int(len(lat) * 0.99)], 1),
                        "max": round(1000 * lat[-1], 1)} if lat else {})
    finally:
        stack.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, help="duration in seconds (wins over --minutes)")
    ap.add_argument("--rate", type=float, default=25.0, help="calls per second through the gateway")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--bound", type=float, default=DEFAULT_BOUND_MIB, help="allowed RSS growth per component except the server, MiB")
    ap.add_argument("--unix-socket", action="store_true",
                    help="the gateway and the executors reach the server through its Unix socket")
    ap.add_argument("--out", help="write the result as JSON to this file")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="faas-soak-") as tmp:
        result = run_soak(Path(tmp), seconds, rate=args.rate, concurrency=args.concurrency, bound_mib=args.bound,
                          unix_socket=args.unix_socket)
    data = asdict(result) | {"problems": result.problems()}
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=2) + "\n")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(json.dumps({k: v for k, v in data.items() if k != "samples"}, indent=2))
    if result.problems():
        print("SOAK FAILED: " + "; ".join(result.problems()), file=sys.stderr)
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
