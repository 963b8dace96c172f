"""The deploy/ monitoring configuration is valid and fits the app: promtool, amtool,
blackbox, runbook links, and the log collectors' view of the app's real log lines."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.servers import require_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def run(*cmd: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


RULES = sorted(p for p in (DEPLOY / "prometheus/rules").glob("*.yml") if not p.stem.endswith("_test"))


@pytest.mark.parametrize("rules", RULES, ids=lambda p: p.name)
def test_promtool_check_rules(rules: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    out = run(promtool, "check", "rules", str(rules))
    assert "SUCCESS" in out


@pytest.mark.parametrize("rules", RULES, ids=lambda p: p.name)
def test_promtool_test_rules(rules: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    out = run(promtool, "test", "rules", str(rules.with_name(rules.stem + "_test.yml")))
    assert "SUCCESS" in out


@pytest.mark.parametrize("rules", RULES, ids=lambda p: p.name)
def test_every_alert_has_a_unit_test(rules: Path) -> None:
    import yaml

    alerts = {r["alert"] for g in yaml.safe_load(rules.read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(rules.with_name(rules.stem + "_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert alerts - tested == set(), f"alerts without a firing test: {alerts - tested}"
    config = (DEPLOY / "prometheus/prometheus.yml").read_text()
    assert f"rules/{rules.name}" in config, f"{rules.name} is not loaded by prometheus.yml"


def test_promtool_check_prometheus_config() -> None:
    promtool = require_binary("promtool", "prometheus")
    run(promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))


def test_alertmanager_config_is_valid_and_routes_to_a_webhook() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    run(amtool, "check-config", str(DEPLOY / "alertmanager/alertmanager.yml"))
    import yaml

    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    receiver = config["route"]["receiver"]
    hooks = next(r for r in config["receivers"] if r["name"] == receiver)["webhook_configs"]
    assert hooks and hooks[0]["url"].startswith("http")


def test_blackbox_config_is_valid() -> None:
    blackbox = require_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    run(blackbox, "--config.check", f"--config.file={DEPLOY / 'blackbox/blackbox.yml'}")


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_runbook_link_points_at_a_section_of_the_monitoring_doc() -> None:
    import yaml

    doc = (ROOT / "docs/operations/monitoring.md").read_text()
    anchors = {_slug(line.lstrip("#")) for line in doc.splitlines() if line.startswith("#")}
    groups = [g for path in RULES for g in yaml.safe_load(path.read_text())["groups"]]
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                path, _, anchor = rule["annotations"]["runbook"].partition("#")
                assert path == "docs/operations/monitoring.md", rule["alert"]
                assert anchor in anchors, f"{rule['alert']}: no section #{anchor}"
                assert rule["alert"] in doc, f"{rule['alert']} is not described"


def _app_log_lines(tmp_path: Path, sqlite_url: str, capsys: Any) -> list[dict[str, Any]]:
    from litestar.testing import TestClient

    from tests.conftest import make_settings
    from waymark.app import create_app, setup_process

    settings = make_settings(tmp_path, sqlite_url)
    setup_process(settings)  # JSON logs on stdout, as in a worker (asgi.py)
    app = create_app(settings)
    with TestClient(app) as client:
        capsys.readouterr()
        client.get("/healthz", headers={"X-Request-ID": "collector-1"})
        client.get("/no/such/page")
    app.state.services.db.dispose()
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_log_collectors_read_the_fields_the_app_writes(tmp_path: Path, sqlite_url: str,
                                                       capsys: Any) -> None:
    import yaml

    records = _app_log_lines(tmp_path, sqlite_url, capsys)
    access = [r for r in records if r.get("request_id") == "collector-1"]
    assert access, records
    line = access[0]

    # Grafana Alloy -> Loki (systemd journal, containers, Kubernetes): every extracted field
    # exists in the app's lines; labels stay few and bounded (never request ids or routes)
    configs = sorted((DEPLOY / "alloy").glob("*.alloy"))
    assert {c.name for c in configs} >= {"config.alloy", "containers.alloy", "kubernetes.alloy"}
    datetime.fromisoformat(line["timestamp"])  # RFC 3339, as stage.timestamp expects
    for config in configs:
        alloy = config.read_text()
        code = re.sub(r"(^|\s)//.*$", "", alloy, flags=re.MULTILINE)  # comments, not URLs
        assert code.count("{") == code.count("}"), config.name
        json_stage = re.search(r"stage\.json\s*\{\s*expressions\s*=\s*\{(.*?)\}", code, re.DOTALL)
        assert json_stage, f"{config.name}: no stage.json"
        fields = dict(re.findall(r"(\w+)\s*=\s*\"(\w+)\"", json_stage.group(1)))
        assert fields and all(src in line for src in fields.values()), (config.name, fields)
        ts_source = re.search(r"stage\.timestamp\s*\{\s*source\s*=\s*\"(\w+)\"", code).group(1)
        assert fields[ts_source] == "timestamp", config.name
        labels = re.search(r"stage\.labels\s*\{\s*values\s*=\s*\{(.*?)\}", code, re.DOTALL)
        assert set(re.findall(r"(\w+)\s*=", labels.group(1))) <= {"level", "logger"}, config.name
        targets = set(re.findall(r'target_label\s*=\s*"(\w+)"', code))
        assert targets <= {"job", "host", "container", "namespace", "component", "pod"}, targets
        assert re.search(r'url\s*=\s*"http[^"]+/loki/api/v1/push"', code), config.name
        # every component referenced is defined in the same file
        defined = set(re.findall(r'^([a-z_.]+) "(\w+)" \{', code, re.MULTILINE))
        for kind, name in re.findall(r"\b((?:loki|discovery)\.[a-z_]+)\.(\w+)\.", code):
            assert (kind, name) in defined, f"{config.name}: {kind}.{name} is not defined"
    assert {r["level"] for r in records} <= {"debug", "info", "warning", "error", "critical"}
    journal = (DEPLOY / "alloy/config.alloy").read_text()
    assert 'matches       = "_SYSTEMD_UNIT=waymark.service"' in journal

    # OpenTelemetry Collector: the pipeline is wired and parses the same fields
    otel = yaml.safe_load((DEPLOY / "otel-collector/otelcol.yaml").read_text())
    pipeline = otel["service"]["pipelines"]["logs"]
    for kind in ("receivers", "processors", "exporters"):
        assert pipeline[kind] and set(pipeline[kind]) <= set(otel[kind]), kind
    operators = otel["receivers"][pipeline["receivers"][0]]["operators"]
    parser = next(op for op in operators if op["type"] == "json_parser")
    for key in ("timestamp", "severity"):
        assert parser[key]["parse_from"].removeprefix("attributes.") in line, key
    moved = [op["from"].removeprefix("attributes.") for op in operators if op["type"] == "move"]
    assert all(name in line for name in moved), moved
    stamp = datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")  # the Go layout
    assert stamp.tzinfo is not None
