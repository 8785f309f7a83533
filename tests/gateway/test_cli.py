"""`faas gateway start`: argument and environment errors, and a real start as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

import gateway
from gateway.cli import build_parser, main
from tests.harness.ports import free_port, wait_port
from tests.harness.server import DEV_COLONY, DEV_PRVKEY, ServerHandle


def test_public_names_are_sorted() -> None:
    assert gateway.__all__ == sorted(gateway.__all__)


def test_defaults() -> None:
    args = build_parser().parse_args(["start"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, 1)


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COLONIES_PRVKEY", raising=False)
    monkeypatch.setenv("COLONIES_COLONY_NAME", "dev")
    assert main(["start"]) == 2
    assert "COLONIES_PRVKEY is not set" in capsys.readouterr().err


def test_bad_workers(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLONIES_PRVKEY", DEV_PRVKEY)
    monkeypatch.setenv("COLONIES_COLONY_NAME", DEV_COLONY)
    assert main(["start", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_faas_cli_dispatches_to_the_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    from deployer.cli import main as faas

    with pytest.raises(SystemExit) as e:
        faas(["gateway", "--help"])
    assert e.value.code == 0
    assert "faas gateway" in capsys.readouterr().out


def test_start_serves_health_against_a_real_server(server: ServerHandle) -> None:
    port = free_port()
    env = dict(os.environ, COLONIES_SERVER_HOST=server.host, COLONIES_SERVER_PORT=str(server.port),
               COLONIES_COLONY_NAME=DEV_COLONY, COLONIES_PRVKEY=DEV_PRVKEY)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "start", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, timeout=30)
        r = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    # uvicorn shuts down cleanly, then re-raises the captured SIGTERM (so -15 is a clean stop).
    assert proc.returncode in (0, -signal.SIGTERM), out.decode()
    assert b"Traceback" not in out, out.decode()


def test_an_idle_connection_stays_open_for_the_keepalive_time(server: ServerHandle) -> None:
    """FAAS_GATEWAY_KEEPALIVE reaches uvicorn: idle within it the connection serves the next
    request; past it the gateway closes it. (The default, 75 s, outlasts clients' own idle
    expiry, so they close first; at 5 s, equal to httpx's, a reused connection could be closed
    under a request.)"""
    import socket
    import time

    port = free_port()
    env = dict(os.environ, COLONIES_SERVER_HOST=server.host, COLONIES_SERVER_PORT=str(server.port),
               COLONIES_COLONY_NAME=DEV_COLONY, COLONIES_PRVKEY=DEV_PRVKEY, FAAS_GATEWAY_KEEPALIVE="2")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "start", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    request = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n"

    def answer(s: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += s.recv(4096)
        return head.split(b"\r\n")[0]

    try:
        wait_port(port, timeout=30)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            assert answer(s) == b"HTTP/1.1 200 OK"
            time.sleep(1.0)  # idle, within the keep-alive time
            s.sendall(request)
            assert answer(s) == b"HTTP/1.1 200 OK"
            idle = time.monotonic()
            s.settimeout(4)  # uvicorn's own default (5 s) would not have closed it yet
            assert s.recv(1) == b""  # then the gateway closes it
            assert time.monotonic() - idle > 1.5
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=15)
