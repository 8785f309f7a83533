"""docker-compose.yml against the Compose specification (Compose v2's own parser, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import require_compose
from .validators import (
    COMPOSE_ENV_EXAMPLE,
    COMPOSE_FILE,
    compose_config,
    compose_structure_errors,
)


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = COMPOSE_FILE.read_text()
    assert old in text
    path = tmp_path / "docker-compose.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_compose_file_is_valid_with_the_example_env_file(compose_model: dict[str, Any]) -> None:
    assert compose_structure_errors(compose_model) == []


def test_compose_runs_the_whole_stack(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    assert {"postgres", "s3", "server", "setup", "gateway", "executor", "faas"} <= services.keys()
    assert services["server"]["deploy"]["replicas"] == 2
    assert services["executor"]["deploy"]["replicas"] >= 2
    db = services["server"]["command"][services["server"]["command"].index("--db") + 1]
    assert db == "postgresql://colonies@postgres:5432/colonies"
    for name in ("postgres", "s3", "server", "gateway"):
        assert services[name]["healthcheck"]["test"], name
    assert services["gateway"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert services["server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["faas"]["profiles"] == ["tools"]  # the CLI is run on demand, not by `up`
    assert {"pgdata", "s3data"} <= compose_model["volumes"].keys()


def test_executor_stop_grace_covers_its_drain(compose_model: dict[str, Any]) -> None:
    executor = compose_model["services"]["executor"]
    command = executor["command"]
    call_limit = float(command[command.index("--timeout") + 1])
    assert _seconds(executor["stop_grace_period"]) >= call_limit + 15


def _seconds(duration: str) -> float:
    """A Compose duration ("90s", "1m30s") in seconds."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def test_s3_identity_uses_the_same_keys_as_the_clients(compose_model: dict[str, Any]) -> None:
    import json

    identities = json.loads(compose_model["configs"]["s3_identities"]["content"])
    [cred] = identities["identities"][0]["credentials"]
    env = compose_model["services"]["executor"]["environment"]
    assert (cred["accessKey"], cred["secretKey"]) == (env["AWS_S3_ACCESSKEY"], env["AWS_S3_SECRETKEY"])
    assert f"-bucket={env['AWS_S3_BUCKET']}" in compose_model["services"]["s3"]["command"]


@pytest.mark.parametrize("old, new, expected", [
    ("    healthcheck:\n      test: [\"CMD\", \"pg_isready\"", "    healthchek:\n      test: [\"CMD\", \"pg_isready\"",
     "healthchek"),
    ("      replicas: 2", "      replicas: two", "replicas"),
    ("        condition: service_healthy", "        condition: service_happy", "condition"),
])
def test_compose_validator_rejects_broken_copies(tmp_path: Path, old: str, new: str, expected: str) -> None:
    require_compose()
    errors, _ = compose_config(_broken_copy(tmp_path, old, new), COMPOSE_ENV_EXAMPLE)
    assert errors and expected in errors[0], errors


def test_a_missing_key_in_the_env_file_is_an_error() -> None:
    require_compose()
    errors, _ = compose_config(COMPOSE_FILE, None)
    assert errors and "required variable" in errors[0], errors


def test_structure_check_rejects_impossible_depends_on(compose_model: dict[str, Any]) -> None:
    import copy

    model = copy.deepcopy(compose_model)
    del model["services"]["postgres"]["healthcheck"]
    model["services"]["setup"]["restart"] = "always"
    errors = compose_structure_errors(model)
    assert any("postgres has no healthcheck" in e for e in errors), errors
    assert any("one-shot setup" in e for e in errors), errors
