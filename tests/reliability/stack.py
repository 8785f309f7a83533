"""A whole colonyfaas stack as real processes, each in its own session, that tests can break.

Unlike `faas dev` (whose supervisor restarts a dead child at once), every component here is
started, killed and restarted by the test itself, so a fault lasts exactly as long as the test
wants: S3 down for a while, the server down while clients retry, no gateway at all.

Everything listens on 127.0.0.1. `Stack.close()` kills every component and every process
descended from one (workers included), also when the test failed half-way.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sdk import Colonies, id_from_prvkey, new_prvkey
from tests.harness.ports import free_port, wait_port
from tests.harness.s3 import S3Server, weed_binary
from tests.harness.server import SERVER_PRVKEY

ROOT = Path(__file__).resolve().parents[2]
FAAS = [sys.executable, "-m", "deployer.cli"]
SUCCESS, FAILED = 2, 3


def wait_until(cond: Callable[[], object], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll `cond` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), KiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Component:
    """One process of the stack, started in its own session with its output in `log`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> Component:
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> Component:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 60.0) -> Component:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.ready_url or self.port:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start ({self.proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")
            try:
                if self.ready_url:
                    if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                        break
                elif self.port:
                    wait_port(self.port, timeout=0.2)
                    break
            except (httpx.HTTPError, TimeoutError):
                pass
            time.sleep(0.05)
        return self

    def kill9(self) -> None:
        """kill -9 of the component and of everything it started (its workers too)."""
        if self.proc is None:
            return
        kids = descendants(self.proc.pid) if self.alive() else []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for kid in kids:
            _kill(kid)
        self.proc.wait(timeout=10)

    def kill9_alone(self) -> None:
        """kill -9 of this one process only (its children live on, as after an OOM kill)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        kids = descendants(self.proc.pid) if self.alive() else []
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill9()
        for kid in kids:
            _kill(kid)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


class Weed:
    """`weed mini` as S3 that can be stopped and started again on the same ports, keys and data."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        self.root = root
        self.bucket = "reliability"
        self.access, self.secret = "AKrel" + os.urandom(4).hex(), "SK" + os.urandom(16).hex()
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "faas", "credentials": [{"accessKey": self.access, "secretKey": self.secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        master, volume, filer, s3port, admin = (free_port() for _ in range(5))
        self.server = S3Server("127.0.0.1", s3port, self.access, self.secret, self.bucket)
        weed = weed_binary()
        assert weed is not None
        argv = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
                f"-s3.port={s3port}", f"-admin.port={admin}", "-webdav=false", "-admin.ui=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={root / 's3.json'}"]
        self.component = Component("s3", argv, dict(env, GOMEMLIMIT="512MiB"), root / "weed.log", port=s3port)

    def start(self) -> S3Server:
        self.component.start()
        self._wait_ready()
        return self.server

    def stop(self) -> None:
        self.component.stop(timeout=10)

    def _wait_ready(self) -> None:
        import boto3
        from botocore.config import Config

        s3 = boto3.client("s3", endpoint_url=self.server.url, aws_access_key_id=self.access,
                          aws_secret_access_key=self.secret, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3))

        def ready() -> bool:
            try:
                try:
                    s3.head_bucket(Bucket=self.bucket)
                except Exception:
                    s3.create_bucket(Bucket=self.bucket)
                s3.put_object(Bucket=self.bucket, Key="ready-probe", Body=b"ok")
                return True
            except Exception:  # weed answers 5xx for a moment after it starts listening
                return False

        wait_until(ready, 60, "weed S3 to accept a write", step=0.1)


class Stack:
    """Server (SQLite), S3, gateway and executors of colony `rel`, whose keys are all fresh.

    `env` holds the COLONIES_*/AWS_S3_* a user of the colony would export (user key).
    """

    def __init__(self, root: Path, executors: int = 2, concurrency: int = 2, lease: float = 2.0,
                 gateway_env: dict[str, str] | None = None, db: str | None = None, unix_socket: bool = False) -> None:
        self.root = root
        # The server also on a Unix socket, which the gateway and the executors then use.
        self.unix_socket = str(root / "colonies.sock") if unix_socket else ""
        root.mkdir(parents=True, exist_ok=True)
        self.db_path = root / "colonies.db"
        self.db = db or f"sqlite:///{self.db_path}"
        self.colony = "rel"
        self.colony_prvkey, self.user_prvkey = new_prvkey(), new_prvkey()
        self.concurrency, self.lease = concurrency, lease
        self.base = {k: v for k, v in os.environ.items()
                     if not k.startswith(("COLONIES_", "AWS_S3_", "FAAS_", "PYTEST_"))}
        self.base["PYTHONUNBUFFERED"] = "1"
        self.weed = Weed(root / "s3", self.base)
        self.server_port, self.gateway_port = free_port(), free_port()
        self.executor_keys: dict[str, str] = {}
        self.executors: dict[str, Component] = {}
        self.n_executors = executors
        self.server = Component(
            "server", [*FAAS, "server", "start", "--host", "127.0.0.1", "--port", str(self.server_port),
                       "--db", self.db, "--dev", *(["--unix-socket", self.unix_socket] if self.unix_socket else [])],
            self.base, root / "server.log", ready_url=f"http://127.0.0.1:{self.server_port}/health")
        self.gateway = Component(
            "gateway", [*FAAS, "gateway", "start", "--host", "127.0.0.1", "--port", str(self.gateway_port)],
            dict(self.base, **self.env, **(gateway_env or {})), root / "gateway.log",
            ready_url=f"http://127.0.0.1:{self.gateway_port}/healthz")

    # -- configuration ----------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {
            "COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": str(self.server_port),
            "COLONIES_SERVER_TLS": "false", "COLONIES_TLS": "false", "COLONIES_COLONY_NAME": self.colony,
            "COLONIES_PRVKEY": self.user_prvkey, **self.weed.server.env(),
            **({"COLONIES_SERVER_SOCKET": self.unix_socket} if self.unix_socket else {}),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def secrets(self) -> dict[str, str]:
        """Every secret of the stack, by what it is."""
        out = {"colony private key": self.colony_prvkey, "user private key": self.user_prvkey,
               "S3 secret key": self.weed.secret}
        out.update({f"executor key of {name}": key for name, key in self.executor_keys.items()})
        return out

    def client(self) -> Colonies:
        return Colonies(host="127.0.0.1", port=self.server_port, prvkey=self.user_prvkey, timeout=30)

    def log_files(self) -> list[Path]:
        return sorted(self.root.rglob("*.log"))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, deploy: Path | None = None) -> Stack:
        self.server.spawn()
        self.weed.start()
        self.server.wait_ready()
        self._bootstrap()
        # The rest start side by side: each takes seconds of imports on a busy machine.
        self.gateway.spawn()
        names = [f"rel-executor-{i + 1}" for i in range(self.n_executors)]
        for name in names:
            self.start_executor(name, wait_registered=False)
        deploying = None
        if deploy is not None:
            # A per-call limit: the gateway then sets maxexectime = 20 + 5 s.
            deploying = self.deploy_async(deploy, "--timeout", "20")
        try:
            self.gateway.wait_ready()
            for name in names:
                self.wait_executor(name)
            if deploying is not None:
                out, err = deploying.communicate(timeout=120)
                assert deploying.returncode == 0, f"deploy failed ({deploying.returncode}):\n{out}\n{err}"
        finally:
            if deploying is not None and deploying.poll() is None:
                deploying.kill()
                deploying.communicate()
        return self

    def _bootstrap(self) -> None:
        with Colonies(host="127.0.0.1", port=self.server_port, prvkey=SERVER_PRVKEY, timeout=30) as owner:
            owner.add_colony({"colonyid": id_from_prvkey(self.colony_prvkey), "name": self.colony})
            owner.add_user({"colonyname": self.colony, "userid": id_from_prvkey(self.user_prvkey),
                            "name": "reluser", "email": "", "phone": ""}, prvkey=self.colony_prvkey)

    def start_executor(self, name: str, wait_registered: bool = True) -> Component:
        key = self.executor_keys.setdefault(name, new_prvkey())
        env = {**self.base, **self.env, "COLONIES_COLONY_PRVKEY": self.colony_prvkey, "COLONIES_PRVKEY": key,
               "COLONIES_EXECUTOR_NAME": name}
        state = self.root / f"state-{name}"
        comp = Component(name, [*FAAS, "executor", "start", "--name", name, "--concurrency", str(self.concurrency),
                                "--lease", str(self.lease), "--assign-timeout", "2", "--state-dir", str(state)],
                         env, self.root / f"{name}.log")
        self.executors[name] = comp.spawn()
        if wait_registered:
            self.wait_executor(name)
        return comp

    def wait_executor(self, name: str, timeout: float = 60) -> None:
        comp = self.executors[name]

        def registered() -> bool:
            if not comp.alive():
                raise AssertionError(f"{name} exited:\n{comp.tail()}")
            with self.client() as c:
                return any(e.executorname == name and int(e.state) == 1 for e in c.get_executors(self.colony) or [])
        wait_until(registered, timeout, f"{name} to register", step=0.1)

    def deploy_async(self, path: Path, *extra: str) -> subprocess.Popen[str]:
        env = dict(self.base, **self.env, FAAS_GATEWAY_URL=self.url)
        return subprocess.Popen([*FAAS, "deploy", str(path), "--env-file", "", *extra], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def deploy(self, path: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(self.base, **self.env, FAAS_GATEWAY_URL=self.url)
        done = subprocess.run([*FAAS, "deploy", str(path), "--env-file", "", *extra], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert done.returncode == 0, f"deploy failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        return done

    def restart_server(self) -> None:
        self.server.start()

    def heal(self) -> None:
        """Start again whatever a test left dead, so the next test finds a whole stack."""
        if not self.weed.component.alive():
            self.weed.start()
        if not self.server.alive():
            self.server.start()
        if not self.gateway.alive():
            self.gateway.start()
        for name, comp in list(self.executors.items()):
            if not comp.alive():
                self.start_executor(name)

    def close(self) -> None:
        """kill -9 of everything (a graceful stop is not what is under test, and takes seconds)."""
        for comp in [self.gateway, *self.executors.values(), self.server, self.weed.component]:
            comp.kill9()

    def pids(self) -> dict[str, int]:
        comps = [self.server, self.gateway, *self.executors.values()]
        return {c.name: c.pid for c in comps if c.alive()}

    # -- ground truth: the server's own database --------------------------------------------

    def processes(self) -> list[dict[str, Any]]:
        """Every process of the colony as stored (read-only, while the server runs)."""
        if self.db.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(self.db, connect_timeout=10) as pg:
                rows = pg.execute("SELECT doc FROM processes WHERE colonyname=%s", (self.colony,)).fetchall()
            return [json.loads(bytes(r[0])) for r in rows]
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("SELECT doc FROM processes WHERE colonyname=?", (self.colony,)).fetchall()
        finally:
            con.close()
        return [json.loads(r[0]) for r in rows]
