"""A local "cluster": the processes the Compose/Kubernetes files run, started and stopped the way
pods are, while 500 invocations go through the gateway. Every invocation must complete once.

Servers, gateway and executors are real `faas …` processes configured only through the env names
and options the manifests use; the colony is created by deploy/setup_colony.py, as the setup
Job does. One executor gets SIGTERM mid-load (scale-down: drain, unregister), one gets kill -9
with its workers (node loss: the server re-queues its calls when its lease runs out), and
replacements start, as the Deployment controller would do.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.ports import free_port
from tests.harness.s3 import S3Server

from .validators import SETUP_SCRIPT

pytestmark = pytest.mark.slow

FAAS = "import sys; from deployer.cli import main; sys.exit(main(sys.argv[1:]))"
N_CALLS = 500
CONCURRENCY = 32
LEASE = 3  # seconds; the manifests keep the executor's default (30)

FUNCTIONS = '''
def square(x: int) -> int:
    """x², slowly enough that calls are in flight when executors stop."""
    import time

    time.sleep(0.05)
    return x * x
'''


@dataclass
class Proc:
    """One component process in its own session (so kill -9 takes its workers too)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.log.parent, start_new_session=True)
        return self

    def signal(self, sig: int, group: bool = False) -> None:
        """To the component only (as tini forwards SIGTERM), or to its whole group (a dead node)."""
        if self.proc and self.proc.poll() is None:
            (os.killpg if group else os.kill)(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL, group=True)
            return self.proc.wait(timeout=10)
        finally:
            self.signal(signal.SIGKILL, group=True)  # leftovers of the group, if any

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "AWS_S3_", "FAAS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_http(url: str, procs: list[Proc], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.proc and p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited ({p.proc.returncode}):\n{p.tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout}s:\n" + "\n".join(p.tail() for p in procs))


@pytest.fixture
def postgres_db() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped after."""
    asyncpg = pytest.importorskip("asyncpg")
    name = f"faas_cluster_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    from tests.harness.require import require

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError:
        require(False, "PostgreSQL on 127.0.0.1:5432", "start PostgreSQL (trust auth, user postgres)")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite-1-replica", "postgresql-2-replicas"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    if request.param.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'colonies.db'}", 1
    return request.getfixturevalue("postgres_db"), 2


async def test_every_invocation_completes_once_while_executors_come_and_go(
        db: tuple[str, int], s3_server: S3Server, tmp_path: Path) -> None:
    from sdk import Colonies, id_from_prvkey, new_prvkey

    dsn, replicas = db
    server_key, colony_key, user_key = new_prvkey(), new_prvkey(), new_prvkey()
    colony = "cluster"
    procs: list[Proc] = []
    try:
        # -- servers: the same command and env as the Deployment (server.yaml) -----------------
        ports = [free_port() for _ in range(replicas)]
        server_env = {**_base_env(), "COLONIES_SERVER_ID": id_from_prvkey(server_key),
                      "COLONIES_ALLOW_EXECUTOR_REREGISTER": "true"}
        servers = []
        for i, port in enumerate(ports):
            p = Proc(f"server-{i}", [sys.executable, "-c", FAAS, "server", "start", "--host", "127.0.0.1",
                                     "--port", str(port), "--db", dsn], server_env, tmp_path / f"server-{i}.log")
            procs.append(p.start())
            servers.append(p)
            if i == 0:  # the first replica creates the schema; the others join it
                try:
                    _wait_http(f"http://127.0.0.1:{port}/health", [p])
                except RuntimeError as e:
                    if "not supported yet" in str(e):
                        pytest.skip(f"the server has no store for {dsn.split(':')[0]} yet")
                    raise
        for port in ports[1:]:
            _wait_http(f"http://127.0.0.1:{port}/health", servers)

        def client_env(port: int) -> dict[str, str]:
            return {**_base_env(), **s3_server.env(), "COLONIES_SERVER_HOST": "127.0.0.1",
                    "COLONIES_SERVER_PORT": str(port), "COLONIES_SERVER_TLS": "false",
                    "COLONIES_COLONY_NAME": colony}

        # -- the setup Job ---------------------------------------------------------------------
        setup = subprocess.run([sys.executable, str(SETUP_SCRIPT), "--user-name", "faas", "--timeout", "30"],
                               env={**client_env(ports[0]), "COLONIES_SERVER_PRVKEY": server_key,
                                    "COLONIES_COLONY_PRVKEY": colony_key, "COLONIES_PRVKEY": user_key},
                               capture_output=True, text=True, timeout=60)
        assert setup.returncode == 0, setup.stderr

        # -- faas deploy -----------------------------------------------------------------------
        (tmp_path / "funcs.py").write_text(FUNCTIONS)
        deploy = subprocess.run([sys.executable, "-c", FAAS, "deploy", "funcs.py"], cwd=tmp_path,
                                env={**client_env(ports[-1]), "COLONIES_PRVKEY": user_key},
                                capture_output=True, text=True, timeout=60)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr

        # -- gateway and executors, spread over the server replicas -----------------------------
        gw_port = free_port()
        gateway = Proc("gateway", [sys.executable, "-c", FAAS, "gateway", "start", "--host", "127.0.0.1",
                                   "--port", str(gw_port)],
                       {**client_env(ports[0]), "COLONIES_PRVKEY": user_key}, tmp_path / "gateway.log")
        procs.append(gateway.start())

        def executor(i: int) -> Proc:
            env = {**client_env(ports[i % replicas]), "COLONIES_COLONY_PRVKEY": colony_key,
                   "COLONIES_EXECUTOR_NAME": f"faas-executor-{i}"}
            # As in a pod, where the executor is not root: no per-slot uids, no cgroups of its own.
            # (Several root executors on one host share those; that is the executor's business.)
            p = Proc(f"executor-{i}", [sys.executable, "-c", FAAS, "executor", "start", "--type", "faas-executor",
                                       "--concurrency", "4", "--timeout", "60", "--lease", str(LEASE),
                                       "--uid-base", "none", "--no-cgroups"],
                     env, tmp_path / f"executor-{i}.log")
            procs.append(p.start())
            return p

        executors = [executor(i) for i in range(3)]
        _wait_http(f"http://127.0.0.1:{gw_port}/healthz", [gateway, *servers])

        # -- 500 invocations while one executor scales down and one node is lost ----------------
        done = 0
        results: dict[int, tuple[int, Any]] = {}
        sem = asyncio.Semaphore(CONCURRENCY)

        async def invoke(http: httpx.AsyncClient, x: int) -> None:
            nonlocal done
            async with sem:
                r = await http.get("/function/square", params={"x": x})
            results[x] = (r.status_code, r.json() if r.headers.get("content-type", "").startswith(
                "application/json") else r.text)
            done += 1

        async def chaos() -> tuple[Proc, Proc]:
            while done < N_CALLS // 5:
                await asyncio.sleep(0.01)
            drained = executors[0]
            drained.signal(signal.SIGTERM)  # scale-down: drain, unregister
            executor(3)  # the replacement pod
            while done < N_CALLS // 2:
                await asyncio.sleep(0.01)
            lost = executors[1]
            lost.signal(signal.SIGKILL, group=True)  # node loss: no drain, no unregister
            executor(4)
            return drained, lost

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=120) as http:
            chaos_task = asyncio.create_task(chaos())
            await asyncio.gather(*(invoke(http, x) for x in range(N_CALLS)))
            drained, lost = await chaos_task

        # -- every invocation answered once, with its own process and the right value -----------
        bad = {x: r for x, r in results.items() if r[0] != 200 or r[1].get("result") != x * x}
        assert not bad, f"{len(bad)} failed invocations, e.g. {list(bad.items())[:3]}"
        assert len({r[1]["processid"] for r in results.values()}) == N_CALLS
        drained_rc = drained.proc.wait(timeout=90) if drained.proc else None
        assert drained_rc == 0, drained.tail()
        assert lost.proc is not None and lost.proc.poll() == -signal.SIGKILL
        client = Colonies(host="127.0.0.1", port=ports[-1], prvkey=user_key)
        try:
            stats = client.colony_stats(colony)
            names = {e.executorname: e.state for e in client.get_executors(colony)}
        finally:
            client.close_connections()
        assert (stats.successfulprocesses, stats.failedprocesses) == (N_CALLS, 0)
        assert (stats.waitingprocesses, stats.runningprocesses) == (0, 0)
        assert names["faas-executor-0"] == 3, "the drained executor unregistered itself"  # UNREGISTERED
    finally:
        for p in reversed(procs):
            p.stop()
