"""The Dockerfile's rules, the build context, and the commands the image runs in Compose and Kubernetes."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from typing import Any

import pytest

from .containers import (
    Container,
    cli_errors,
    compose_containers,
    entry_point_commands,
    k8s_containers,
    setup_script_errors,
)
from .dockerfile_rules import dockerfile_errors, dockerfile_instructions
from .validators import DOCKERFILE, ROOT, SETUP_SCRIPT, Doc

# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_follows_our_rules() -> None:
    assert dockerfile_errors(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize("old, new, expected", [
    ("USER 10001:10001\n", "", "no USER"),
    ("USER 10001:10001\n", "USER root\n", "final USER is root"),
    ("FROM python:3.11.13-slim-bookworm AS runtime", "FROM python:3.11-slim AS runtime", "not pinned"),
    ("FROM python:3.11.13-slim-bookworm AS build", "FROM python:latest AS build", "not pinned"),
    ('ENTRYPOINT ["tini", "--", "faas"]', 'ENTRYPOINT ["python", "-m", "deployer.cli"]', "not faas"),
    ('ENTRYPOINT ["tini", "--", "faas"]', "ENTRYPOINT faas", "exec (JSON) form"),
    ("--no-install-recommends tini", "tini", "--no-install-recommends"),
])
def test_dockerfile_rules_reject_broken_copies(old: str, new: str, expected: str) -> None:
    text = DOCKERFILE.read_text()
    assert old in text
    errors = dockerfile_errors(text.replace(old, new, 1))
    assert any(expected in e for e in errors), errors


def test_single_stage_dockerfile_is_rejected() -> None:
    text = "FROM python:3.11.13-slim-bookworm\nUSER 10001\nENTRYPOINT [\"faas\"]\n"
    assert any("multi-stage" in e for e in dockerfile_errors(text))


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns we use: last match wins, `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        # fnmatch's `*` also matches "/", which covers the `**/` patterns too.
        if any(fnmatch.fnmatch(p, pat) for p in prefixes):
            ignored = not negate
    return ignored


def test_build_context_keeps_what_the_dockerfile_copies_and_drops_secrets() -> None:
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    sources = []
    for ins in dockerfile_instructions(DOCKERFILE.read_text()):
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            sources += ins.args.split()[:-1]
    assert "deploy/setup_colony.py" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file"
        assert not _ignored(src, patterns), f"COPY {src} is excluded by .dockerignore"
    for secret in ("deploy/compose.env", ".git", ".venv", "tests"):
        assert _ignored(secret, patterns), f"{secret} would be sent to the Docker daemon"


def test_packages_copied_into_the_image_are_the_packages_pyproject_installs() -> None:
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = {ins.args.split()[0] for ins in dockerfile_instructions(DOCKERFILE.read_text())
              if ins.keyword == "COPY" and "--from=" not in ins.args}
    assert packages <= copied, f"the image misses {sorted(packages - copied)}"


# --- the commands Compose and Kubernetes run --------------------------------------------------------


def test_entrypoint_commands_are_declared_by_the_cli() -> None:
    declared = entry_point_commands()
    assert {"server", "executor", "gateway"} <= declared.keys()


def test_commands_the_image_runs_exist_in_the_cli(rendered_base: list[Doc], rendered_keda: list[Doc],
                                                  compose_model: dict[str, Any]) -> None:

    containers = [*k8s_containers(rendered_base), *compose_containers(compose_model)]
    assert {c.component for c in containers} >= {"server", "gateway", "executor", "setup"}
    # docker-compose.yml and the READMEs also tell users to run `faas deploy /functions/convert.py`.
    documented = Container("docs: faas deploy", ("faas", "deploy"), frozenset())
    assert cli_errors([*containers, documented]) == []
    assert setup_script_errors(containers) == []


def test_cli_check_rejects_unknown_commands_and_flags(rendered_base: list[Doc]) -> None:
    from dataclasses import replace

    [gateway] = [c for c in k8s_containers(rendered_base) if c.component == "gateway"]
    typo = replace(gateway, argv=("faas", "gatewy", "start"))
    assert any("gatewy" in e for e in cli_errors([typo]))
    bad_flag = replace(gateway, argv=(*gateway.argv, "--wrkers", "2"))
    assert any("--wrkers" in e for e in cli_errors([bad_flag]))
    [setup] = [c for c in k8s_containers(rendered_base) if c.component == "setup"]
    assert any("--user-nam" in e for e in setup_script_errors([replace(setup, argv=(*setup.argv, "--user-nam", "x"))]))


# --- the setup script against the real server ----------------------------------------------------


def _setup_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """deploy/setup_colony.py as a module (it is a script in the image, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("setup_colony", SETUP_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "setup_colony", module)  # dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def test_setup_creates_the_colony_and_user_and_is_idempotent(server: Any, caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from sdk import Colonies, new_prvkey
    from tests.harness.server import SERVER_PRVKEY

    setup = _setup_module(monkeypatch)
    colony_key, user_key = new_prvkey(), new_prvkey()
    env = {"COLONIES_SERVER_HOST": server.host, "COLONIES_SERVER_PORT": str(server.port),
           "COLONIES_SERVER_PRVKEY": SERVER_PRVKEY, "COLONIES_COLONY_NAME": "deploytest",
           "COLONIES_COLONY_PRVKEY": colony_key, "COLONIES_PRVKEY": user_key}
    settings = setup.settings_from_env(env, user_name="gw", timeout=10.0)
    with caplog.at_level("INFO", logger="colonyfaas.setup"):
        setup.run(settings)
        assert "created colony deploytest" in caplog.text and "created user gw" in caplog.text
        caplog.clear()
        setup.run(settings)  # the Job runs again on every apply
        assert "colony deploytest already exists" in caplog.text
        assert "user gw already exists" in caplog.text
    client = Colonies(host=server.host, port=server.port, prvkey=user_key)
    try:
        assert client.get_colony("deploytest").name == "deploytest"  # the user is a member
    finally:
        client.close_connections()


def test_setup_names_missing_variables() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLONIES_", "AWS_S3_"))}
    proc = subprocess.run([sys.executable, str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**env, "COLONIES_SERVER_HOST": "127.0.0.1", "COLONIES_SERVER_PORT": "1"})
    assert proc.returncode != 0
    assert "COLONIES_SERVER_PRVKEY" in proc.stderr and "COLONIES_COLONY_PRVKEY" in proc.stderr
