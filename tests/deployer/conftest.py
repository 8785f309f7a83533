"""Helpers for deployer tests: write function files, run bundles in a fresh interpreter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployer.cli import main
from deployer.inspect_functions import SourceFile, load_source_file, unload
from sdk import Colonies, S3Config, S3Store
from tests.harness.s3 import S3Server
from tests.harness.server import COLONY_PRVKEY, DEV_COLONY, DEV_PRVKEY, ServerHandle

from .stand_in_executor import StandInExecutor

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Runs one bundle the way docs/BUNDLE.md says an executor does, importing nothing from this
# repository: a fresh interpreter in isolated mode (-I: no cwd, no PYTHONPATH on sys.path).
_RUNNER = textwrap.dedent("""
    import base64, json, sys, types
    bundle = json.loads(sys.stdin.read())
    call = json.loads(sys.argv[1])
    if bundle["serializer"] == "source":
        module = types.ModuleType("faas_" + bundle["name"])
        exec(compile(bundle["code"], "<faas>", "exec"), module.__dict__)
        fn = module.__dict__[bundle["entrypoint"]]
    else:
        import cloudpickle
        fn = cloudpickle.loads(base64.b64decode(bundle["code"]))
    loaded = sorted(m for m in sys.modules if m.startswith(("deployer", "sdk", "tests")))
    print(json.dumps({"result": fn(*call["args"], **call["kwargs"]), "loaded": loaded}))
""")


def run_fresh(bundle_bytes: bytes, *args: Any, cwd: Path, **kwargs: Any) -> Any:
    """Call the bundle's function in a new `python -I` and return its JSON result."""
    proc = subprocess.run([sys.executable, "-I", "-c", _RUNNER, json.dumps({"args": args, "kwargs": kwargs})],
                          input=bundle_bytes, capture_output=True, cwd=cwd, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["loaded"] == []
    return out["result"]


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented source text to tmp_path/<name> and return the path."""

    def write(text: str, name: str = "funcs.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def load(write_file: Callable[..., Path]) -> Iterator[Callable[..., SourceFile]]:
    """Write a function file and load it; every loaded module is forgotten after the test."""
    loaded: list[SourceFile] = []

    def _load(text: str, name: str = "funcs.py") -> SourceFile:
        source = load_source_file(write_file(text, name))
        loaded.append(source)
        return source

    yield _load
    for source in loaded:
        unload(source)


# -- end to end: the CLI against a real server and S3 ------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


Faas = Callable[..., Ran]


def store_for(s3: S3Server) -> S3Store:
    return S3Store(S3Config(endpoint=s3.endpoint, accesskey=s3.access_key, secretkey=s3.secret_key,
                            bucket=s3.bucket, region=s3.region))


@pytest.fixture
def env(server: ServerHandle, s3_server: S3Server) -> dict[str, str]:
    """What `faas dev`'s env file holds: this server, the dev colony and key, this S3."""
    return {"COLONIES_SERVER_HOST": server.host, "COLONIES_SERVER_PORT": str(server.port),
            "COLONIES_SERVER_TLS": "false", "COLONIES_COLONY_NAME": DEV_COLONY,
            "COLONIES_COLONY_PRVKEY": COLONY_PRVKEY, "COLONIES_PRVKEY": DEV_PRVKEY,
            "FAAS_GATEWAY_URL": "http://gw.example:8000", **s3_server.env()}


@pytest.fixture
def faas(env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Faas:
    """Run the CLI in-process with `env` (never os.environ) and capture what it prints."""
    monkeypatch.chdir(tmp_path)  # no stray .faas/env from the working directory

    def run(*argv: str, **overrides: str) -> Ran:
        capsys.readouterr()
        code = main([str(a) for a in argv], env={**env, **overrides})
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def executor(server: ServerHandle, s3_server: S3Server) -> Iterator[StandInExecutor]:
    ex = StandInExecutor(server.host, server.port, DEV_COLONY, COLONY_PRVKEY, store_for(s3_server)).start()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def client(server: ServerHandle, s3_server: S3Server) -> Iterator[Colonies]:
    with Colonies(host=server.host, port=server.port, prvkey=DEV_PRVKEY, store=store_for(s3_server)) as c:
        yield c


def write(tmp_path: Path, text: str, name: str = "funcs.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def rows(out: str) -> list[list[str]]:
    """A table's data rows, split on runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()[1:]]
