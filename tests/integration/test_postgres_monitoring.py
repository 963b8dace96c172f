"""PostgreSQL monitoring: the real prometheus-postgres-exporter (Debian) on a real PostgreSQL
exports every series the alert rules (deploy/prometheus/rules/postgres.yml) and the
dashboard's PostgreSQL row use, and it follows reality (a long transaction shows up); the
exporter is part of the compose prod stack (compose.prod.postgres.yaml) and of the
Kubernetes PostgreSQL mode. The rules' own unit tests run in test_observability_alerts.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.integration.test_deploy_compose import COMPOSE, compose_schema, load, plan_compose
from tests.integration.test_deploy_k8s import by_kind, render
from tests.security.test_network_isolation import isolation_problems
from tests.servers import LOOPBACK, free_port, require_binary, stop_process
from tests.unit.test_metrics import promql_metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
QUERIES = DEPLOY / "k8s/modes/postgres/postgres-exporter-queries.yaml"
RULES = DEPLOY / "prometheus/rules/postgres.yml"
DASHBOARD = DEPLOY / "grafana/dashboards/waymark.json"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def exporter(postgres_server) -> Iterator[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """The Debian exporter with Waymark's extra queries, on a free loopback port."""
    binary = require_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
    url = postgres_server.create_database("monitored")
    port = free_port()
    env = {**os.environ, "DATA_SOURCE_NAME": f"postgresql://postgres@{LOOPBACK}:"
           f"{postgres_server.port}/monitored?sslmode=disable"}
    proc = subprocess.Popen([binary, f"--web.listen-address={LOOPBACK}:{port}",
                             f"--extend.query-path={QUERIES}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if "pg_up 1" in scrape(port):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the exporter never reported pg_up 1")
        yield port, url
    finally:
        stop_process(proc)


def names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def used_pg_metrics() -> set[str]:
    used = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            used |= promql_metrics(rule["expr"])
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            used |= promql_metrics(target["expr"])
    used.add("pg_up")  # the dashboard's pg_instance variable
    return {m for m in used if m.startswith("pg_")}


def test_the_exporter_exports_what_the_rules_and_dashboard_use(exporter) -> None:  # type: ignore[no-untyped-def]
    port, _ = exporter
    text = scrape(port)
    used = used_pg_metrics()
    assert {"pg_up", "pg_stat_activity_count", "pg_settings_max_connections",
            "pg_stat_activity_max_tx_duration", "pg_stat_archiver_failed_count",
            "pg_replication_max_replay_lag_seconds"} <= used
    missing = sorted(used - names(text))
    assert not missing, f"not exported by prometheus-postgres-exporter: {missing}"
    # Waymark's extra query: one row on a primary with no standby
    assert value(text, "pg_replication_standbys") == 0
    assert value(text, "pg_replication_max_replay_lag_seconds") == 0


def test_a_long_transaction_shows_up(exporter, postgres_server) -> None:  # type: ignore[no-untyped-def]
    port, _ = exporter
    with psycopg.connect(postgres_server.conninfo("monitored")) as conn:
        conn.execute("SELECT txid_current()")  # opens a transaction and keeps it open
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = value(scrape(port), "pg_stat_activity_max_tx_duration", datname="monitored",
                         state="idle in transaction")
            if seen and seen >= 1:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the open transaction never showed in the exporter")
        conn.rollback()


def test_compose_prod_on_postgresql_runs_the_exporter() -> None:
    import jsonschema

    override = yaml.safe_load((COMPOSE / "compose.prod.postgres.yaml").read_text())
    jsonschema.Draft201909Validator(compose_schema()).validate(override)
    exporter = override["services"]["postgres-exporter"]
    assert exporter["image"].startswith("quay.io/prometheuscommunity/postgres-exporter:v0.11")
    source = exporter["volumes"][0].split(":", 1)[0]
    assert (COMPOSE / source).resolve() == QUERIES
    plan = plan_compose("compose.prod.yaml", "compose.prod.postgres.yaml",
                        project="waymark-check-pg")
    assert plan.services["postgres-exporter"]["networks"] == {"metrics", "outbound"}
    assert plan.services["postgres-exporter"]["ports"] == []  # never published
    for name in ("app1", "app2", "worker", "init"):
        assert "outbound" in plan.services[name]["networks"], name  # reaches the database
    assert "WAYMARK_DATABASE_URL_FILE=/run/secrets/database_url" in plan.stdout
    # Prometheus gets the SQLite stack's configuration plus exactly the PostgreSQL parts
    assert override["services"]["prometheus"]["volumes"] == [
        "./prod/prometheus.postgres.yml:/etc/prometheus/prometheus.yml:ro"]
    base = yaml.safe_load((COMPOSE / "prod" / "prometheus.yml").read_text())
    with_pg = yaml.safe_load((COMPOSE / "prod" / "prometheus.postgres.yml").read_text())
    assert with_pg["rule_files"] == [*base["rule_files"], "/etc/prometheus/rules/postgres.yml"]
    assert with_pg["scrape_configs"] == [*base["scrape_configs"], {
        "job_name": "postgres", "static_configs": [{"targets": ["postgres-exporter:9187"]}]}]
    assert {k: v for k, v in with_pg.items() if k not in ("rule_files", "scrape_configs")} == \
        {k: v for k, v in base.items() if k not in ("rule_files", "scrape_configs")}
    # and the network isolation rules hold for the merged stack
    merged = merge_compose(load("prod"), override)
    assert isolation_problems(merged, plan) == []
    assert "prometheus.postgres.yml" in " ".join(merged["services"]["prometheus"]["volumes"])


def merge_compose(base: dict, override: dict) -> dict:
    """Compose's merge of an override file: maps merge, lists extend, a volume replaces the
    one mounted at the same target."""
    import copy

    def merge(into: dict, extra: dict) -> dict:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            elif isinstance(value, list) and isinstance(into.get(key), list):
                if key == "volumes":
                    targets = {v.split(":")[1] for v in value}
                    into[key] = [v for v in into[key] if v.split(":")[1] not in targets]
                into[key] = [*into[key], *value]
            else:
                into[key] = copy.deepcopy(value)
        return into

    return merge(copy.deepcopy(base), override)


@pytest.mark.parametrize("overlay", ["staging", "prod", "dev", "prod-sqlite"])
def test_kubernetes_postgresql_mode_runs_the_exporter(overlay: str) -> None:
    docs = [d for d in yaml.safe_load_all(render(overlay)) if d]
    exporters = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "postgres-exporter"]
    if overlay in ("dev", "prod-sqlite"):
        assert exporters == []  # SQLite mode: nothing to watch
        return
    [deployment] = exporters
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert "--extend.query-path=/etc/postgres-exporter/queries.yaml" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) == {"DATA_SOURCE_URI_FILE", "DATA_SOURCE_USER_FILE", "DATA_SOURCE_PASS_FILE"}
    [queries] = [c for c in by_kind(docs, "ConfigMap")
                 if c["metadata"]["name"].startswith("postgres-exporter-queries")]
    assert queries["data"]["queries.yaml"] == QUERIES.read_text()
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["queries"]["configMap"]["name"] == queries["metadata"]["name"]
    [policy] = [p for p in by_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == "postgres-exporter"]
    assert policy["spec"]["podSelector"]["matchLabels"] == \
        deployment["spec"]["selector"]["matchLabels"]
    assert [p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]] == [9187]
    assert sorted({p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}) == [53, 5432]
