"""The alerting configuration is valid and its rules behave: promtool, amtool, blackbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import require_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def run(*cmd: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    out = run(promtool, "check", "rules", str(DEPLOY / "prometheus/rules/waymark.yml"))
    assert "SUCCESS" in out


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    out = run(promtool, "test", "rules", str(DEPLOY / "prometheus/rules/waymark_test.yml"))
    assert "SUCCESS" in out


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((DEPLOY / "prometheus/rules/waymark.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((DEPLOY / "prometheus/rules/waymark_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert alerts - tested == set(), f"alerts without a firing test: {alerts - tested}"


def test_promtool_check_prometheus_config() -> None:
    promtool = require_binary("promtool", "prometheus")
    run(promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))


def test_alertmanager_config_is_valid_and_routes_to_a_webhook() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    run(amtool, "check-config", str(DEPLOY / "alertmanager/alertmanager.yml"))
    import yaml

    config = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    receiver = config["route"]["receiver"]
    hooks = [r for r in config["receivers"] if r["name"] == receiver][0]["webhook_configs"]
    assert hooks and hooks[0]["url"].startswith("http")


def test_blackbox_config_is_valid() -> None:
    blackbox = require_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    run(blackbox, "--config.check", f"--config.file={DEPLOY / 'blackbox/blackbox.yml'}")
