"""Deployed files run by the real FaaS executor (`python -m faas_executor start`, a child process):
plain, stdlib-importing, helper-using, class-using and closure functions, `async def` functions
and generators, and a bare tutorial file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk import Colonies
from tests.harness.server import DEV_COLONY

from .conftest import EXAMPLES, Faas, write

FILE = '''
import math

RATE = 9 / 5


class Kelvin:
    def __init__(self, celsius):
        self.value = celsius + 273.15


def _fahrenheit(celsius):
    return celsius * RATE + 32


def plain(x):
    return x * 2


def uses_stdlib(x):
    return math.sqrt(x)


def uses_helper(celsius):
    return _fahrenheit(celsius)


def uses_class(celsius):
    return round(Kelvin(celsius).value, 2)


def make(k):
    def times(x):
        return x * k
    return times


closure = make(5)
'''


@pytest.fixture
def real_executor(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One real executor process; calls queue on the server until it is ready."""
    log = open(tmp_path / "executor.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "faas_executor", "start", "--concurrency", "1", "--assign-timeout", "1",
         "--state-dir", str(tmp_path / "executor-state")],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "executor.log").read_text(errors="replace")[-3000:]


def test_every_kind_of_function_runs_on_the_real_executor(
        faas: Faas, tmp_path: Path, real_executor: subprocess.Popen[bytes]) -> None:
    deployed = faas("deploy", write(tmp_path, FILE, "kinds.py"), "--json")
    assert deployed.code == 0, deployed.err
    serializers = {d["name"]: d["serializer"] for d in deployed.json()}  # type: ignore[union-attr]
    assert serializers == {"plain": "source", "uses_stdlib": "source", "uses_helper": "cloudpickle",
                           "uses_class": "cloudpickle", "make": "source", "closure": "cloudpickle"}
    expected = {"plain": 42, "uses_stdlib": 4.0, "uses_helper": 69.8, "uses_class": 294.15, "closure": 105}
    args = {"plain": "21", "uses_stdlib": "16", "uses_helper": "21", "uses_class": "21", "closure": "21"}
    for name, value in expected.items():
        ran = faas("invoke", name, args[name], "--timeout", "60")
        assert ran.code == 0, f"{name}: {ran.err}\nexecutor log:\n{_tail(tmp_path)}"
        assert json.loads(ran.out) == pytest.approx(value), name


def test_examples_and_a_bare_tutorial_file_run_on_the_real_executor(
        faas: Faas, tmp_path: Path, client: Colonies,
        real_executor: subprocess.Popen[bytes]) -> None:
    assert faas("deploy", EXAMPLES / "closure_example.py").code == 0
    ran = faas("invoke", "describe", "celsius=21", "--timeout", "60")
    assert ran.code == 0, f"{ran.err}\nexecutor log:\n{_tail(tmp_path)}"
    assert json.loads(ran.out) == {"celsius": 21, "fahrenheit": 69.8, "kelvin": 294.15}
    client.upload_bytes(DEV_COLONY, "/faas", "convert", b"def convert(celsius):\n    return (celsius * 9/5) + 32\n")
    ran = faas("invoke", "convert", "21", "--timeout", "60")
    assert ran.code == 0, f"{ran.err}\nexecutor log:\n{_tail(tmp_path)}"
    assert json.loads(ran.out) == pytest.approx(69.8)
    failed = faas("invoke", "describe", "-300", "--timeout", "60")
    # celsius is annotated float: the word -300 reaches the function as -300.0.
    assert failed.code == 1 and "ValueError: -300.0 °C is below absolute zero" in failed.err



def test_the_tutorial_deploy_with_pycolonies_then_faas(
        faas: Faas, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        real_executor: subprocess.Popen[bytes]) -> None:
    """The ColonyOS serverless tutorial's deploy step, verbatim in spirit: pycolonies uploads
    `inspect.getsource(convert)` to /faas; `faas ls` lists it and `faas invoke` runs it."""
    import inspect

    from pycolonies import Colonies as PycColonies

    def convert(celsius):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN202 - the tutorial's function
        return (celsius * 9/5) + 32

    for key, value in env.items():
        monkeypatch.setenv(key, value)  # pycolonies reads AWS_S3_* from the process environment
    pyc = PycColonies(env["COLONIES_SERVER_HOST"], int(env["COLONIES_SERVER_PORT"]), False)
    source_code = textwrap.dedent(inspect.getsource(convert))
    pyc.upload_data(env["COLONIES_COLONY_NAME"], env["COLONIES_PRVKEY"], filename="convert",
                    data=source_code.encode("utf-8"), label="/faas")
    listing = faas("ls", "--json").json()
    assert [(f["name"], f["serializer"], f["legacy"]) for f in listing] == [  # type: ignore[union-attr]
        ("convert", "source", True)]
    ran = faas("invoke", "convert", "21", "--timeout", "60")
    assert ran.code == 0, f"{ran.err}\nexecutor log:\n{_tail(tmp_path)}"
    assert json.loads(ran.out) == pytest.approx(69.8)


def test_logs_follow_a_call_on_the_real_executor(
        faas: Faas, tmp_path: Path, real_executor: subprocess.Popen[bytes]) -> None:
    faas("deploy", write(tmp_path, "def chatty(n):\n    for i in range(n):\n        print('line', i)\n    return n\n"))
    pid = faas("invoke", "chatty", "3", "--async").out.strip()
    followed = faas("logs", pid, "-f")
    assert followed.code == 0, f"{followed.err}\nexecutor log:\n{_tail(tmp_path)}"
    assert [line for line in followed.out.splitlines() if line.startswith("line")] == ["line 0", "line 1", "line 2"]
    assert followed.out.splitlines()[-1] == "3"  # then the result, as `faas invoke` prints it
    assert any(p["processid"] == pid and p["state"] == "successful"  # type: ignore[index]
               for p in faas("ps", "--json").json())  # type: ignore[union-attr]


ASYNC_FILE = '''
import asyncio

RATE = 9 / 5


async def echo(code: str, delay: float = 0.0) -> list:
    await asyncio.sleep(delay)
    return [code, delay]


async def fahrenheit(celsius: float) -> float:
    await asyncio.sleep(0)
    return celsius * RATE + 32


async def countdown(n: int):
    for i in range(n, 0, -1):
        await asyncio.sleep(0)
        print("tick", i)
        yield i


async def broken(x: int):
    await asyncio.sleep(0)
    raise ValueError(f"broken {x}")
'''


def test_async_functions_deploy_and_run_on_the_real_executor(
        faas: Faas, tmp_path: Path, real_executor: subprocess.Popen[bytes]) -> None:
    deployed = faas("deploy", write(tmp_path, ASYNC_FILE, "asyncs.py"), "--json")
    assert deployed.code == 0, deployed.err
    assert {d["name"]: d["serializer"] for d in deployed.json()} == {  # type: ignore[union-attr]
        "echo": "source", "fahrenheit": "cloudpickle", "countdown": "source", "broken": "source"}
    listing = {f["name"]: f["signature"] for f in faas("ls", "--json").json()}  # type: ignore[union-attr]
    assert [p["annotation"] for p in listing["echo"]["parameters"]] == ["str", "float"]
    # The words are converted by the recorded annotations: "007" stays text, "1" becomes 1.0.
    ran = faas("invoke", "echo", "007", "delay=1", "--timeout", "60")
    assert ran.code == 0, f"{ran.err}\nexecutor log:\n{_tail(tmp_path)}"
    code, delay = json.loads(ran.out)
    assert code == "007" and delay == 1.0 and isinstance(delay, float)
    ran = faas("invoke", "fahrenheit", "21", "--timeout", "60")
    assert ran.code == 0 and json.loads(ran.out) == pytest.approx(69.8), ran.err
    failed = faas("invoke", "broken", "7", "--timeout", "60")
    assert failed.code == 1 and 'File "<faas:broken>"' in failed.err and 'raise ValueError(f"broken {x}")' in failed.err
    assert "ValueError: broken 7" in failed.err and "asyncio/" not in failed.err
    pid = faas("invoke", "countdown", "3", "--async").out.strip()
    followed = faas("logs", pid, "-f")
    assert followed.code == 0, f"{followed.err}\nexecutor log:\n{_tail(tmp_path)}"
    lines = followed.out.splitlines()
    assert [line for line in lines if line.startswith("tick")] == ["tick 3", "tick 2", "tick 1"]
    assert json.loads("\n".join(line for line in lines if not line.startswith("tick"))) == [3, 2, 1]

