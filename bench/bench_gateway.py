"""Gateway benchmark: GET /function/convert?celsius=21 end to end vs an in-process FastAPI baseline.

Starts, on 127.0.0.1: a Colonies server (SQLite, --dev identities), S3 (weed mini), one FaaS
executor, the gateway; deploys `convert` with `faas deploy`; and a baseline FastAPI app that
computes convert() in-process, served by the same uvicorn (uvloop + httptools, 1 worker).
Both are measured in the same run with the same load tool:

- latency at concurrency 1 (p50 / p99),
- throughput at concurrency 64,
- CPU per invocation summed over all our processes (server, executor and its workers, gateway),
  from /proc during the c=64 run.

Beside the interpreter's speed, each run records what waking a process costs on this machine, on
one CPU and across two (see `crossing`), since the c=1 ratio depends on it.

Load tool: wrk when installed (`apt-get install --no-install-recommends wrk`), else an httpx
async load generator (slower client; ratios stay meaningful, absolute numbers less so).

    .venv/bin/python bench/bench_gateway.py [--duration 10] [--stand-in-executor]

Writes bench/results/gateway.json and prints a table with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.ports import free_port, wait_port  # noqa: E402
from tests.harness.s3 import WeedProcess  # noqa: E402
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY  # noqa: E402

CONVERT_SOURCE = '''\
def convert(celsius: float) -> float:
    """Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32
'''

BASELINE_SOURCE = '''\
from fastapi import FastAPI

app = FastAPI()


def convert(celsius: float) -> float:
    return celsius * 9 / 5 + 32


@app.get("/function/convert")
async def call(celsius: float) -> dict:
    return {"result": convert(celsius), "processid": "in-process"}
'''

PATH = "/function/convert?celsius=21"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes --------------------------------------------------------------------------------------

class Procs:
    """Child processes started by the benchmark, each in its own session, stopped in reverse order."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd or ROOT,
                                start_new_session=True)
        log.close()
        self.started.append((name, proc))
        return proc

    def pids(self, *names: str) -> dict[str, int]:
        return {n: p.pid for n, p in self.started if n in names}

    def stop(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=5)


def tree_cpu_seconds(roots: list[int]) -> float:
    """user+system CPU of these processes and all their live descendants, plus reaped children."""
    parent: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        pid = int(entry)
        parent[pid] = int(fields[1])
        # utime, stime, cutime, cstime (fields 14-17 of stat; index 11-14 after the comm field)
        times[pid] = sum(int(x) for x in fields[11:15]) / CLK_TCK
    wanted = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(times.get(p, 0.0) for p in wanted)


# -- load -------------------------------------------------------------------------------------------

def _wrk_ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, connections: int, duration: float, threads: int) -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                          "--timeout", "30s", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    pct = {k: _wrk_ms(v) for k, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "p50_ms": pct.get("50", float("nan")),
            "p99_ms": pct.get("99", float("nan")), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1) if sock else ""}  # type: ignore[dict-item]


async def _httpx_load(url: str, connections: int, duration: float) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    bad = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal bad
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append((time.perf_counter() - t0) * 1000)
                bad += r.status_code != 200
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "requests": len(latencies),
            "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], "non_2xx": bad,
            "socket_errors": ""}  # type: ignore[dict-item]


def load(url: str, connections: int, duration: float, tool: str) -> dict[str, float]:
    if tool == "wrk":
        return run_wrk(url, connections, duration, threads=1 if connections == 1 else 2)
    return asyncio.run(_httpx_load(url, connections, duration))


def warm(url: str, n: int = 200) -> None:
    """Warm caches and workers; a failed call is reported, not fatal (the load runs count them)."""
    import httpx

    failures = 0
    with httpx.Client(timeout=60) as c:
        for i in range(n):
            r = c.get(url, headers={"X-Timeout": "10"})
            if r.status_code != 200:
                failures += 1
                print(f"warm-up: HTTP {r.status_code}: {r.text[:300]}", file=sys.stderr)
                if failures == i + 1 >= 3:
                    raise RuntimeError("the first warm-up calls all failed; is the stack working?")


# -- the stack --------------------------------------------------------------------------------------

def start_stack(procs: Procs, work: Path, stand_in: bool, executor_args: list[str] | None = None,
                unix_socket: bool = True) -> tuple[str, dict[str, int], Any]:
    """Server, S3, executor, gateway; returns (gateway url, pids of our processes, weed).

    With `unix_socket` (the default) the server also listens on a Unix socket and the gateway and
    the executor reach it there (COLONIES_SERVER_SOCKET), as processes on one host should."""
    weed = WeedProcess(work / "weed")
    s3 = weed.start()
    py = sys.executable
    server_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "COLONIES_SERVER_SOCKET"}
    env.update(COLONIES_SERVER_HOST="127.0.0.1", COLONIES_SERVER_PORT=str(server_port),
               COLONIES_SERVER_TLS="false", COLONIES_COLONY_NAME=DEV_COLONY, COLONIES_PRVKEY=DEV_PRVKEY,
               COLONIES_COLONY_PRVKEY=COLONY_PRVKEY, **s3.env())
    if unix_socket:
        env["COLONIES_SERVER_SOCKET"] = str(work / "colonies.sock")
    procs.start("server", [py, "-m", "colonies_server", "start", "--host", "127.0.0.1", "--port", str(server_port),
                           "--db", f"sqlite:///{work / 'colonies.db'}", "--dev"], env)
    wait_port(server_port, 30)

    src = work / "convert.py"
    src.write_text(CONVERT_SOURCE)
    faas = [py, "-c", "import sys; from deployer.cli import main; sys.exit(main())"]
    subprocess.run([*faas, "deploy", str(src), "--env-file", ""], env=env, check=True, cwd=ROOT,
                   capture_output=True)

    if stand_in:
        code = ("import signal, sys; from tests.gateway.stand_in_executor import StandInExecutor; "
                "from sdk import S3Store, S3Config; import os; e = os.environ; "
                "st = S3Store(S3Config(endpoint=e['AWS_S3_ENDPOINT'], accesskey=e['AWS_S3_ACCESSKEY'], "
                "secretkey=e['AWS_S3_SECRETKEY'], bucket=e['AWS_S3_BUCKET'], region=e['AWS_S3_REGION'])); "
                f"x = StandInExecutor('127.0.0.1', {server_port}, '{DEV_COLONY}', '{COLONY_PRVKEY}', st); "
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); x._run()")
        procs.start("executor", [py, "-c", code], env)
    else:
        # No COLONIES_PRVKEY: the executor registers an identity of its own with the colony key
        # (DEV_PRVKEY is the dev colony's "cli"-type executor and would never be assigned our calls).
        ex_env = {k: v for k, v in env.items() if k != "COLONIES_PRVKEY"}
        procs.start("executor", [*faas, "executor", "start", *(executor_args or [])],
                    dict(ex_env, COLONIES_EXECUTOR_NAME="bench-executor", COLONIES_EXECUTOR_TYPE="faas-executor"))

    gw_port = free_port()
    procs.start("gateway", [py, "-m", "gateway", "start", "--host", "127.0.0.1", "--port", str(gw_port),
                            "--log-level", "warning"], env)
    wait_port(gw_port, 30)
    return f"http://127.0.0.1:{gw_port}", procs.pids("server", "executor", "gateway"), weed


def start_baseline(procs: Procs, work: Path) -> tuple[str, dict[str, int]]:
    (work / "baseline_app.py").write_text(BASELINE_SOURCE)
    port = free_port()
    procs.start("baseline", [sys.executable, "-m", "uvicorn", "baseline_app:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log",
                             "--loop", "uvloop", "--http", "httptools"], dict(os.environ), cwd=work)
    wait_port(port, 30)
    return f"http://127.0.0.1:{port}", procs.pids("baseline")


def measure(url: str, pids: dict[str, int], duration: float, tool: str) -> dict[str, Any]:
    warm(url + PATH)
    c1 = load(url + PATH, 1, duration, tool)
    cpu0 = {name: tree_cpu_seconds([pid]) for name, pid in pids.items()}
    c64 = load(url + PATH, 64, duration, tool)
    cpu = {name: tree_cpu_seconds([pid]) - cpu0[name] for name, pid in pids.items()}
    n = max(1, c64["requests"])
    return {"c1": c1, "c64": c64, "cpu_ms_per_call": 1000 * sum(cpu.values()) / n,
            "cpu_ms_per_call_by_process": {name: 1000 * c / n for name, c in cpu.items()}}


def interpreter() -> dict[str, Any]:
    """Which CPython runs every process of both stacks, and how fast it is at plain Python.

    Plain Python runs ~1.3x faster on a CPython built with PGO + LTO (Debian's python3, the
    python:3.11 images the Dockerfile uses) than on a plain `./configure` build (pyenv's default),
    and the gateway stack needs ~20 % less CPU per call there (bench/README.md, fifth round), the
    baseline gaining as much: compare runs only with the same interpreter.
    `probe_ms` is the least CPU time of 25 runs of a fixed dict/str/json workload, to tell
    them apart (the least: what the interpreter needs, with the machine's other work left out).
    """
    import sysconfig

    def work() -> None:
        d: dict[int, str] = {}
        for i in range(40_000):
            d[i % 1000] = str(i) + "x"
        text = json.dumps([{"a": i, "b": [1, 2, 3], "c": "xyz"} for i in range(200)])
        for _ in range(20):
            json.loads(text)

    times = []
    for _ in range(25):
        t0 = time.thread_time()
        work()
        times.append(time.thread_time() - t0)
    return {"executable": sys.executable, "version": platform.python_version(),
            "build": platform.python_build()[0], "compiler": platform.python_compiler(),
            "configure": sysconfig.get_config_var("CONFIG_ARGS") or "",
            "probe_ms": round(1000 * min(times), 1)}


def crossing(rounds: int = 3000) -> dict[str, float]:
    """Median round trip (µs) of one byte between two processes over pipes: both on one CPU, and
    on two CPUs. A call through the gateway stack wakes a process eight times (gateway, server,
    executor, worker, executor, server, gateway, wrk), the baseline twice, and what a wake-up
    on another, idle, CPU costs is a property of the VM that the interpreter probe does not show
    (on the VM of bench/README.md's thirteenth round, ~8x a wake-up on the same CPU). Recorded
    beside that probe, so that the c=1 ratios of runs on different VMs can be told apart. Empty
    with fewer than two CPUs or without sched_setaffinity."""
    if not hasattr(os, "sched_setaffinity"):
        return {}
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return {}
    warm = 200
    out: dict[str, float] = {}
    for label, (mine, theirs) in (("same_cpu", (cpus[0], cpus[0])), ("two_cpus", (cpus[0], cpus[1]))):
        ping_r, ping_w = os.pipe()
        pong_r, pong_w = os.pipe()
        child = os.fork()
        if child == 0:  # echo every byte back, then leave without running any cleanup of the parent's
            try:
                os.sched_setaffinity(0, {theirs})
                for _ in range(warm + rounds):
                    os.write(pong_w, os.read(ping_r, 1))
            finally:
                os._exit(0)
        before = os.sched_getaffinity(0)
        times: list[int] = []
        try:
            os.sched_setaffinity(0, {mine})
            for i in range(warm + rounds):
                t0 = time.perf_counter_ns()
                os.write(ping_w, b"x")
                os.read(pong_r, 1)
                if i >= warm:
                    times.append(time.perf_counter_ns() - t0)
        finally:
            os.sched_setaffinity(0, before)
            os.waitpid(child, 0)
            for fd in (ping_r, ping_w, pong_r, pong_w):
                os.close(fd)
        out[label] = round(statistics.median(times) / 1000, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load run (default 10)")
    ap.add_argument("--tool", choices=["auto", "wrk", "httpx"], default="auto")
    ap.add_argument("--stand-in-executor", action="store_true",
                    help="use the tests' stand-in executor instead of faas_executor (development only)")
    ap.add_argument("--executor-prefetch", type=int, default=None,
                    help="`faas executor start --prefetch N` (default: the executor's own default)")
    ap.add_argument("--executor-concurrency", type=int, default=None,
                    help="`faas executor start --concurrency N` (default: the executor's own default)")
    ap.add_argument("--tcp", action="store_true",
                    help="gateway and executor reach the server over TCP loopback, not its Unix socket")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gateway.json"))
    args = ap.parse_args(argv)
    # A SIGTERM (e.g. from `timeout`) unwinds through the `finally` below, which stops every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    load_start = os.getloadavg()
    python = interpreter()
    wakeups = crossing()

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work = Path(tmp)
        procs = Procs(work)
        weed = None
        try:
            base_url, base_pids = start_baseline(procs, work)
            ex_args = ["--concurrency", str(args.executor_concurrency)] if args.executor_concurrency else []
            if args.executor_prefetch is not None:
                ex_args += ["--prefetch", str(args.executor_prefetch)]
            gw_url, gw_pids, weed = start_stack(procs, work, args.stand_in_executor, ex_args, not args.tcp)
            baseline = measure(base_url, base_pids, args.duration, tool)
            gateway = measure(gw_url, gw_pids, args.duration, tool)
        except BaseException:
            for log in sorted(work.glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            raise
        finally:
            procs.stop()
            if weed is not None:
                weed.stop()

    ratios = {
        "c1_p50": gateway["c1"]["p50_ms"] / baseline["c1"]["p50_ms"],
        "c1_p99": gateway["c1"]["p99_ms"] / baseline["c1"]["p99_ms"],
        "c64_rps": gateway["c64"]["rps"] / baseline["c64"]["rps"],
    }
    result = {
        "benchmark": "GET /function/convert?celsius=21",
        "tool": tool,
        "duration_s": args.duration,
        "executor": "stand-in (tests)" if args.stand_in_executor else "faas_executor",
        "executor_concurrency": args.executor_concurrency,
        "executor_prefetch": args.executor_prefetch,
        "server_transport": "tcp" if args.tcp else "unix socket",
        # Other work on the machine moves every number; recorded so runs can be compared honestly.
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "wakeup_round_trip_us": wakeups},
        "interpreter": python,
        "baseline": baseline,
        "gateway": gateway,
        "ratios": ratios,
        "targets": {"c1_p50_ratio_max": 8.0, "c64_rps_ratio_min": 0.20, "cpu_ms_per_call_max": 1.5},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("c=1 p50 (ms)", baseline["c1"]["p50_ms"], gateway["c1"]["p50_ms"], ratios["c1_p50"], "<= 8x"),
        ("c=1 p99 (ms)", baseline["c1"]["p99_ms"], gateway["c1"]["p99_ms"], ratios["c1_p99"], ""),
        ("c=64 req/s", baseline["c64"]["rps"], gateway["c64"]["rps"], ratios["c64_rps"], ">= 0.20x"),
        ("CPU ms/call", baseline["cpu_ms_per_call"], gateway["cpu_ms_per_call"],
         gateway["cpu_ms_per_call"] / baseline["cpu_ms_per_call"], "gateway <= 1.5 ms"),
    ]
    print(f"\nGET {PATH}  ({tool}, {args.duration:g} s per run, {os.cpu_count()} cpus, "
          f"server reached over {result['server_transport']})")
    print(f"Python {python['version']} ({python['executable']}), interpreter probe {python['probe_ms']} ms")
    if wakeups:
        print(f"process wake-up round trip: {wakeups['same_cpu']} µs on one CPU, {wakeups['two_cpus']} µs across two")
    print(f"{'metric':<14} {'baseline':>12} {'gateway':>12} {'ratio':>8}  target")
    for name, b, g, r, target in rows:
        print(f"{name:<14} {b:>12.2f} {g:>12.2f} {r:>7.2f}x  {target}")
    bad = gateway["c1"]["non_2xx"] + gateway["c64"]["non_2xx"]
    if bad:
        print(f"WARNING: {bad} non-2xx replies from the gateway", file=sys.stderr)
    by_proc = ", ".join(f"{k} {v:.2f}" for k, v in gateway["cpu_ms_per_call_by_process"].items())
    print(f"gateway stack CPU ms/call by process: {by_proc}")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
