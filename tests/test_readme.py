"""The README's two commands: they exist, CI calls the test one, and the main one works from scratch."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAIN_COMMAND = "bash scripts/dev.sh"
TEST_COMMAND = "bash scripts/test.sh"


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S)


def test_readme_gives_the_main_and_the_test_command() -> None:
    commands = "\n".join(shell_blocks(README))
    assert MAIN_COMMAND in commands
    assert TEST_COMMAND in commands


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in ci


def test_both_commands_create_their_own_virtualenv() -> None:
    for script in ("scripts/dev.sh", "scripts/test.sh"):
        assert "source scripts/bootstrap.sh" in (ROOT / script).read_text(), script
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "-m venv" in bootstrap and "pip install" in bootstrap


def copy_tree(dst: Path) -> None:
    """The files git tracks (plus untracked, not ignored ones): what a fresh clone has."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


@pytest.mark.slow
def test_main_command_on_a_fresh_checkout_answers_curl(tmp_path: Path) -> None:
    """Fresh copy, fresh virtualenv: `bash scripts/dev.sh` deploys convert and the printed curl works."""
    checkout = tmp_path / "colonyfaas"
    copy_tree(checkout)
    ports = {"server": free_port(), "gateway": free_port(), "s3": free_port()}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLONIES_", "AWS_S3_", "VIRTUAL_ENV", "PYTEST", "COLONYFAAS_"))}
    env["COLONYFAAS_VENV"] = str(tmp_path / "venv")
    proc = subprocess.Popen(
        ["bash", "scripts/dev.sh", "--data-dir", str(tmp_path / "data"), "--server-port", str(ports["server"]),
         "--gateway-port", str(ports["gateway"]), "--s3-port", str(ports["s3"])],
        cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 600  # creating the venv and installing dominates
        curl = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"curl '([^']+)'", line)
            if found:
                curl = found.group(1)
            if "Ctrl-C stops everything" in line:
                break
        assert curl is not None, "".join(seen)
        reply = httpx.get(curl, timeout=60)
        assert reply.status_code == 200, reply.text
        assert reply.json()["result"] == pytest.approx(69.8)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()
