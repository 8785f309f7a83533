"""`faas dev`: seconds from start until the gateway answers, and idle RSS of our processes.

Measures server + gateway + executors with their worker processes (the S3 server is not ours and
is reported separately). Writes bench/results/devstack.json.

    .venv/bin/python bench/bench_devstack.py [--executors 1] [--idle 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55000:
            return port


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, rss KiB, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0])
        table[int(entry.name)] = (int(fields["PPid"]), rss, cmd)
    return table


def tree_rss(root: int, table: dict[int, tuple[int, int, str]]) -> tuple[int, int]:
    """RSS (KiB) and process count of root and all its descendants."""
    todo, total, count = [root], 0, 0
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        count += 1
        todo += [p for p, (ppid, _, _) in table.items() if ppid == pid]
    return total, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--executors", type=int, default=1)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds to idle before measuring RSS")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="faas-dev-bench-"))
    gw = free_port()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "deployer.cli", "dev", "--data-dir", str(data),
                             "--server-port", str(free_port()), "--gateway-port", str(gw), "--s3-port", str(free_port()),
                             "--executors", str(args.executors)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        answering = None
        while time.monotonic() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{gw}/healthz", timeout=1) as r:
                    if r.status == 200:
                        answering = time.monotonic() - started
                        break
            except OSError:
                time.sleep(0.05)
        if answering is None:
            raise SystemExit("faas dev did not answer within 120 s")
        time.sleep(args.idle)
        table = proc_table()
        parts: dict[str, dict[str, int]] = {}
        for pid, (ppid, _, cmd) in table.items():
            if ppid != proc.pid:
                continue
            name = "s3" if "weed" in cmd else cmd.split(" deployer.cli ")[-1].split()[0]
            rss, count = tree_rss(pid, table)
            part = parts.setdefault(name, {"rss_kib": 0, "processes": 0})
            part["rss_kib"] += rss
            part["processes"] += count
        ours = sum(v["rss_kib"] for k, v in parts.items() if k != "s3")
        result = {
            "benchmark": "faas dev start-up and idle memory",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg": os.getloadavg()},
            "executors": args.executors,
            "seconds_until_gateway_healthz": round(answering, 2),
            "idle_seconds": args.idle,
            "parts": parts,
            "ours_rss_mib": round(ours / 1024, 1),
            "target_rss_mib": 250,
        }
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    out = ROOT / "bench" / "results" / "devstack.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"gateway answering after {result['seconds_until_gateway_healthz']} s")
    for name, part in sorted(parts.items()):
        print(f"  {name:10s} {part['rss_kib'] / 1024:7.1f} MiB in {part['processes']} process(es)")
    print(f"  ours (without s3): {result['ours_rss_mib']} MiB (target < 250 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
