"""deploy/k8s and deploy/k8s-keda against the Kubernetes schemas, KEDA's fields and each other."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import require_kubernetes_validate
from .validators import (
    K8S_DIR,
    K8S_OLDEST,
    KEDA_DIR,
    Doc,
    deepcopy_docs,
    ident,
    k8s_schema_errors,
    kubernetes_validate_cli,
    kustomization_errors,
    load_yaml_docs,
    scaledobject_errors,
)


def _latest() -> str:
    import kubernetes_validate as kv

    return kv.latest_version()


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _pod_labels(doc: Doc) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


# --- every manifest against the schemas --------------------------------------------------------


@pytest.mark.parametrize("version", [K8S_OLDEST, "latest"])
def test_every_manifest_file_matches_the_kubernetes_schemas(k8s_files: dict[Path, list[Doc]],
                                                           version: str) -> None:
    require_kubernetes_validate()
    v = _latest() if version == "latest" else version
    errors = [e for docs in k8s_files.values() for d in docs for e in k8s_schema_errors(d, v)]
    assert not errors, "\n".join(errors)


def test_kubernetes_validate_cli_accepts_the_manifests() -> None:
    require_kubernetes_validate()
    files = sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    proc = kubernetes_validate_cli(files, _latest())
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("overlay", ["base", "keda"])
def test_kustomize_output_matches_the_schemas(rendered_base: list[Doc], rendered_keda: list[Doc],
                                             overlay: str) -> None:
    require_kubernetes_validate()
    docs = rendered_base if overlay == "base" else rendered_keda
    errors = [e for d in docs for e in k8s_schema_errors(d, _latest())]
    assert not errors, "\n".join(errors)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"colonyfaas"}


def test_the_validators_reject_a_typo_and_a_wrong_api_version(k8s_files: dict[Path, list[Doc]]) -> None:
    require_kubernetes_validate()
    server = deepcopy_docs(k8s_files[K8S_DIR / "server.yaml"])
    deployment = _one(server, "Deployment", "faas-server")
    typo = {**deployment, "spec": {**deployment["spec"], "replcas": 2}}
    assert any("replcas" in e for e in k8s_schema_errors(typo, K8S_OLDEST))
    wrong_api = {**deployment, "apiVersion": "apps/v1beta3"}
    assert any("apps/v1beta3" in e for e in k8s_schema_errors(wrong_api, K8S_OLDEST))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["pathh"] = container["readinessProbe"]["httpGet"].pop("path")
    assert any("pathh" in e for e in k8s_schema_errors(deployment, _latest()))


def test_the_cli_rejects_a_broken_copy(tmp_path: Path) -> None:
    require_kubernetes_validate()
    text = (K8S_DIR / "gateway.yaml").read_text()
    broken = tmp_path / "gateway.yaml"
    broken.write_text(text.replace("minReplicas: 2", "minReplica: 2", 1))
    proc = kubernetes_validate_cli([broken], _latest())
    assert proc.returncode != 0 and "minReplica" in proc.stdout + proc.stderr


# --- the KEDA ScaledObject (a CRD the schema set lacks) ------------------------------------------


def test_scaledobject_matches_kedas_documented_fields(k8s_files: dict[Path, list[Doc]]) -> None:
    require_kubernetes_validate()  # jsonschema comes with it
    [so] = k8s_files[KEDA_DIR / "executor-scaledobject.yaml"]
    assert scaledobject_errors(so) == []


@pytest.mark.parametrize("mutation, expected", [
    (lambda so: so.__setitem__("apiVersion", "keda.sh/v1"), "keda.sh/v1alpha1"),
    (lambda so: so["spec"].__setitem__("maxReplicaCont", 3), "maxReplicaCont"),
    (lambda so: so["spec"]["scaleTargetRef"].pop("name"), "'name' is a required property"),
    (lambda so: so["spec"]["triggers"][0]["metadata"].pop("query"), "'query' is a required property"),
    (lambda so: so["spec"]["triggers"][0]["metadata"].__setitem__("threshold", 4), "is not of type 'string'"),
    (lambda so: so["spec"].__setitem__("minReplicaCount", 50), "minReplicaCount > maxReplicaCount"),
])
def test_scaledobject_validator_rejects_broken_copies(k8s_files: dict[Path, list[Doc]], mutation, expected) -> None:  # type: ignore[no-untyped-def]
    require_kubernetes_validate()
    [so] = deepcopy_docs(k8s_files[KEDA_DIR / "executor-scaledobject.yaml"])
    mutation(so)
    errors = scaledobject_errors(so)
    assert any(expected in e for e in errors), errors


def test_keda_overlay_hands_the_executor_hpa_to_keda(rendered_base: list[Doc], rendered_keda: list[Doc]) -> None:
    base_hpas = {d["metadata"]["name"] for d in rendered_base if d["kind"] == "HorizontalPodAutoscaler"}
    keda_hpas = {d["metadata"]["name"] for d in rendered_keda if d["kind"] == "HorizontalPodAutoscaler"}
    assert base_hpas == {"faas-executor", "faas-gateway"}
    assert keda_hpas == {"faas-gateway"}  # two autoscalers on one Deployment would fight
    so = _one(rendered_keda, "ScaledObject", "faas-executor")
    assert so["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "faas-executor"
    assert {t["type"] for t in so["spec"]["triggers"]} == {"prometheus", "cpu"}


def test_scaledobject_queries_the_gauge_the_gateway_exports(rendered_keda: list[Doc]) -> None:
    from .containers import env_names_read

    so = _one(rendered_keda, "ScaledObject", "faas-executor")
    [prom] = [t for t in so["spec"]["triggers"] if t["type"] == "prometheus"]
    m = re.search(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{executortype=\"([^\"]+)\"\}", prom["metadata"]["query"])
    assert m, prom["metadata"]["query"]
    metric, executortype = m.groups()
    assert metric in env_names_read("gateway"), f"the gateway exports no metric {metric}"
    executor = _one(rendered_keda, "Deployment", "faas-executor")
    args = executor["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--type") + 1] == executortype
    # Threshold = waiting processes one pod absorbs = its --concurrency.
    assert prom["metadata"]["threshold"] == args[args.index("--concurrency") + 1]


# --- kustomization lists exactly the files present ------------------------------------------------


@pytest.mark.parametrize("directory", [K8S_DIR, KEDA_DIR], ids=["base", "keda"])
def test_kustomization_lists_exactly_the_files_present(directory: Path) -> None:
    assert kustomization_errors(directory) == []


def test_kustomization_check_rejects_unlisted_and_missing_files(tmp_path: Path) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy)
    (copy / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (copy / "s3.yaml").unlink()
    errors = kustomization_errors(copy)
    assert any("extra.yaml is in" in e for e in errors), errors
    assert any("s3.yaml does not exist" in e for e in errors), errors


# --- how the pieces fit together -------------------------------------------------------------------


def test_selectors_match_pods_and_autoscalers_target_existing_workloads(rendered_base: list[Doc]) -> None:
    workloads = [d for d in rendered_base if d["kind"] in ("Deployment", "StatefulSet")]
    for w in workloads:
        sel = w["spec"]["selector"]["matchLabels"]
        assert sel.items() <= _pod_labels(w).items(), ident(w)
    for d in rendered_base:
        if d["kind"] == "Service":
            sel = d["spec"]["selector"]
            assert any(sel.items() <= _pod_labels(w).items() for w in workloads), f"{ident(d)} selects no pods"
        if d["kind"] == "PodDisruptionBudget":
            sel = d["spec"]["selector"]["matchLabels"]
            assert any(sel.items() <= _pod_labels(w).items() for w in workloads), f"{ident(d)} covers no pods"
        if d["kind"] == "HorizontalPodAutoscaler":
            target = _one(rendered_base, d["spec"]["scaleTargetRef"]["kind"], d["spec"]["scaleTargetRef"]["name"])
            # A fixed replica count would be reset by every `kubectl apply`, fighting the HPA.
            assert "replicas" not in target["spec"], f"{ident(target)} is autoscaled; drop spec.replicas"
        if d["kind"] == "StatefulSet":
            _one(rendered_base, "Service", d["spec"]["serviceName"])


def test_server_runs_two_replicas_on_postgresql(rendered_base: list[Doc]) -> None:
    server = _one(rendered_base, "Deployment", "faas-server")
    assert server["spec"]["replicas"] == 2
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    db = args[args.index("--db") + 1]
    assert db.startswith("postgresql://") and "@faas-postgres:5432/" in db
    assert ":" not in db.split("//", 1)[1].split("@")[0], "no password in the arguments"
    _one(rendered_base, "StatefulSet", "faas-postgres")


def test_containers_have_probes_resources_and_no_privileges(rendered_base: list[Doc]) -> None:
    for d in rendered_base:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, ident(d)
        assert pod["automountServiceAccountToken"] is False, ident(d)  # none of them calls the API
        for c in pod["containers"]:
            where = f"{ident(d)} {c['name']}"
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), where
            assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), where
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            if d["kind"] == "Job" or d["metadata"]["name"] == "faas-executor":
                continue  # run-to-completion / no listener (lease-based liveness, see executor.yaml)
            assert "readinessProbe" in c and "livenessProbe" in c, where
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                handler = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if handler and isinstance(handler["port"], str):
                    assert handler["port"] in ports, f"{where} {probe} names an unknown port"


def test_gateway_readiness_uses_healthz_but_liveness_does_not(rendered_base: list[Doc]) -> None:
    # /healthz is 503 while the server is unreachable: that must take the gateway out of the
    # Service, not restart every gateway pod.
    [c] = _one(rendered_base, "Deployment", "faas-gateway")["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "httpGet" not in c["livenessProbe"]
    [s] = _one(rendered_base, "Deployment", "faas-server")["spec"]["template"]["spec"]["containers"]
    assert s["readinessProbe"]["httpGet"]["path"] == "/health"


def test_executor_grace_period_covers_its_drain(rendered_base: list[Doc]) -> None:
    executor = _one(rendered_base, "Deployment", "faas-executor")
    pod = executor["spec"]["template"]["spec"]
    [c] = pod["containers"]
    args = c["args"]
    # The drain waits for running calls; --timeout bounds those without a limit of their own.
    assert "--timeout" in args, "executor args must bound calls (--timeout) so the drain is bounded"
    call_limit = float(args[args.index("--timeout") + 1])
    assert pod["terminationGracePeriodSeconds"] >= call_limit + 15
    # SIGTERM must reach the executor at once: a preStop hook would eat the grace period.
    assert "preStop" not in c.get("lifecycle", {})
    # Each pod registers under its own, unique pod name.
    [name_env] = [e for e in c["env"] if e["name"] == "COLONIES_EXECUTOR_NAME"]
    assert name_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_image_is_set_once_in_the_kustomization(rendered_base: list[Doc]) -> None:
    raw = [d for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml" for d in load_yaml_docs(p)]
    images = {c["image"] for d in raw if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"colonyfaas"}
    rendered = {c["image"] for d in rendered_base if d["kind"] in ("Deployment", "Job")
                for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(rendered) == 1 and re.fullmatch(r"colonyfaas:\d+\.\d+\.\d+", rendered.pop())
