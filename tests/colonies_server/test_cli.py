"""`faas server start`: settings from arguments and environment, listening line, clean SIGTERM shutdown."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from colonies_server.cli import main, settings_from
from tests.colonies_server._rpc import SERVER_PRVKEY
from tests.harness.ports import free_port

SERVER_ID = "039231c7644e04b6895471dd5335cf332681c54e27f81fac54f9067b3f2c0103"
ROOT = Path(__file__).parents[2]


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"host": None, "port": None, "db": None, "dev": False, "log_level": None,
                               "no_sessions": False, "unix_socket": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_settings_from_env_and_args() -> None:
    s = settings_from(_args(), {"COLONIES_SERVER_PRVKEY": SERVER_PRVKEY, "COLONIES_SERVER_PORT": "51000",
                                "COLONIES_ALLOW_EXECUTOR_REREGISTER": "true", "COLONIES_CRON_CHECKER_PERIOD": "500"})
    assert (s.server_id, s.port, s.allow_executor_reregister, s.cron_period) == (SERVER_ID, 51000, True, 0.5)
    s = settings_from(_args(port=52000, db="sqlite:///x.db", dev=True, log_level="debug"),
                      {"COLONIES_SERVER_ID": "a" * 64, "COLONIES_SERVER_PORT": "51000"})
    assert (s.server_id, s.port, s.db, s.dev, s.log_level) == ("a" * 64, 52000, "sqlite:///x.db", True, "debug")
    assert settings_from(_args(), {}).port == 50080


def test_sessions_are_on_unless_turned_off() -> None:
    assert settings_from(_args(), {}).sessions is True
    assert settings_from(_args(no_sessions=True), {}).sessions is False
    assert settings_from(_args(), {"COLONIES_SERVER_SESSIONS": "false"}).sessions is False
    assert settings_from(_args(), {"COLONIES_SERVER_SESSIONS": "TRUE"}).sessions is True


def test_unix_socket_from_argument_or_environment() -> None:
    assert settings_from(_args(), {}).unix_socket == ""
    assert settings_from(_args(), {"COLONIES_SERVER_SOCKET": " /run/c.sock "}).unix_socket == "/run/c.sock"
    assert settings_from(_args(unix_socket="/tmp/a.sock"), {"COLONIES_SERVER_SOCKET": "/run/c.sock"}).unix_socket \
        == "/tmp/a.sock"


def test_unsupported_database_is_refused_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["start", "--db", "mysql://localhost/x"]) == 2
    assert "postgresql://USER@HOST:PORT/DB" in capsys.readouterr().err


def start_command(port: int, db: Path, *args: str) -> list[str]:
    """`python -m colonies_server start --port PORT --db sqlite:///DB ARGS`."""
    return [sys.executable, "-m", "colonies_server", "start", "--port", str(port), "--db", f"sqlite:///{db}", *args]


def start_refused(db: Path) -> subprocess.CompletedProcess[str]:
    """A server start on `db` that is expected to fail at start-up: its status and output."""
    return subprocess.run(start_command(free_port(), db), capture_output=True, text=True, timeout=60, cwd=ROOT)


@contextmanager
def server_process(tmp_path: Path, port: int, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A server on tmp_path/c.db (start_command) and its first output line; killed afterwards if
    the test has not stopped it."""
    proc = subprocess.Popen(start_command(port, tmp_path / "c.db", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert proc.stdout is not None
        yield proc, proc.stdout.readline().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def stop_with_sigterm(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def test_start_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with server_process(tmp_path, port, "--dev") as (proc, line):
        assert line.startswith(f"colonies server listening on http://127.0.0.1:{port} (db sqlite:///")
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        stop_with_sigterm(proc)


def test_start_listens_on_a_unix_socket_too_and_removes_it_at_the_end(tmp_path: Path) -> None:
    port, path = free_port(), str(tmp_path / "colonies.sock")
    with server_process(tmp_path, port, "--unix-socket", path) as (proc, line):
        assert line.startswith(f"colonies server listening on http://127.0.0.1:{port} and unix:{path} (db ")
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as c:
            assert c.get("http://colonies/health").status_code == 200
        stop_with_sigterm(proc)
        assert not Path(path).exists()


def test_a_unix_socket_in_use_is_refused_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from colonies_server.transport import bind_unix

    path = str(tmp_path / "colonies.sock")
    taken = bind_unix(path)
    try:
        assert main(["start", "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'c.db'}",
                     "--unix-socket", path]) == 1
        assert f"cannot listen on {path}: another server is listening on it" in capsys.readouterr().err
    finally:
        taken.close()


def test_a_second_server_on_the_same_sqlite_database_is_refused_clearly(tmp_path: Path) -> None:
    # Two servers on one SQLite file would each cache what only it writes and never wake the
    # executors parked at the other: the second one is refused, naming the file and the holder.
    with server_process(tmp_path, free_port(), "--dev") as (first, line):
        assert line.startswith("colonies server listening on")
        second = start_refused(tmp_path / "c.db")
        assert second.returncode == 3  # uvicorn's status for a failed start-up, as for an unreachable database
        assert (f"database {tmp_path / 'c.db'} is in use by another colonies server (pid {first.pid})"
                in second.stderr)
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first one goes on serving
        stop_with_sigterm(first)


def test_a_database_that_cannot_be_opened_is_refused_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not SQLite at all" * 300)
    started = start_refused(junk)
    assert started.returncode == 3
    assert f"start-up failed: cannot open database {junk}: file is not a database" in started.stderr
    assert "Traceback" not in started.stderr
