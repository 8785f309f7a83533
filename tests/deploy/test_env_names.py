"""The env names Compose and Kubernetes set are names the code reads; keys and ids agree."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .containers import compose_containers, k8s_containers, unread_env_errors
from .validators import COMPOSE_ENV_EXAMPLE, K8S_DIR, Doc, load_yaml_docs


def _env_file(path: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_every_env_name_kubernetes_sets_is_read_by_the_code(rendered_base: list[Doc]) -> None:
    containers = list(k8s_containers(rendered_base))
    assert {c.component for c in containers} == {"server", "gateway", "executor", "setup"}
    assert unread_env_errors(containers) == []


def test_every_env_name_compose_sets_is_read_by_the_code(compose_model: dict[str, Any]) -> None:
    containers = list(compose_containers(compose_model))
    assert {c.component for c in containers} == {"server", "gateway", "executor", "setup", "cli"}
    assert unread_env_errors(containers) == []


def test_an_env_name_nobody_reads_is_rejected(rendered_base: list[Doc], compose_model: dict[str, Any]) -> None:
    docs = copy.deepcopy(rendered_base)
    [gateway] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "faas-gateway"]
    gateway["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "COLONIES_SERVR_HOST", "value": "x"})
    errors = unread_env_errors(k8s_containers(docs))
    assert errors == ["k8s Deployment/faas-gateway: sets COLONIES_SERVR_HOST, which the gateway code never reads"]
    # A name one component reads is still wrong on another: the server does not read S3 settings.
    model = copy.deepcopy(compose_model)
    model["services"]["server"]["environment"]["AWS_S3_BUCKET"] = "faas"
    errors = unread_env_errors(compose_containers(model))
    assert errors == ["compose server: sets AWS_S3_BUCKET, which the server code never reads"]
    # Keys reach containers through envFrom too.
    [client] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "faas-client"]
    client["data"]["AWS_S3_BUCKT"] = "faas"
    assert any("AWS_S3_BUCKT" in e for e in unread_env_errors(k8s_containers(docs)))


def test_docstrings_and_comments_do_not_count_as_reading_a_name(tmp_path: Path) -> None:
    from .containers import _string_constants

    module = tmp_path / "m.py"
    module.write_text('"""Reads DOC_ONLY_NAME."""\nimport os\n\n\ndef f():\n    """Also DOC_NAME_2."""\n'
                      '    # COMMENT_NAME\n    return os.environ.get("REAL_NAME")\n')
    assert _string_constants(module) == {"REAL_NAME"}


def test_every_configmap_and_secret_key_reaches_a_container() -> None:
    docs = [d for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml" for d in load_yaml_docs(p)]
    used: set[tuple[str, str]] = set()
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if key in ref:
                        used.add((f"{kind}/{ref[key]['name']}", ref[key]["key"]))
            for src in c.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in src:
                        used.add((f"{kind}/{src[key]['name']}", "*"))
    for d in docs:
        if d["kind"] not in ("ConfigMap", "Secret"):
            continue
        name = f"{d['kind']}/{d['metadata']['name']}"
        if (name, "*") in used:
            continue
        for key in {**d.get("data", {}), **d.get("stringData", {})}:
            assert (name, key) in used, f"{name} key {key} reaches no container"


def test_server_ids_match_their_private_keys() -> None:
    from sdk import id_from_prvkey

    env = _env_file(COMPOSE_ENV_EXAMPLE)
    assert env["COLONIES_SERVER_ID"] == id_from_prvkey(env["COLONIES_SERVER_PRVKEY"])
    docs = {f"{d['kind']}/{d['metadata']['name']}": d
            for p in (K8S_DIR / "configmap.yaml", K8S_DIR / "secret.yaml") for d in load_yaml_docs(p)}
    server_id = docs["ConfigMap/faas-server"]["data"]["COLONIES_SERVER_ID"]
    assert server_id == id_from_prvkey(docs["Secret/faas-keys"]["stringData"]["COLONIES_SERVER_PRVKEY"])


def test_example_env_file_sets_every_variable_compose_requires() -> None:
    import re

    from .validators import COMPOSE_FILE

    code = "\n".join(ln.split("#")[0] for ln in COMPOSE_FILE.read_text().splitlines())
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", code))
    assert required <= _env_file(COMPOSE_ENV_EXAMPLE).keys()
