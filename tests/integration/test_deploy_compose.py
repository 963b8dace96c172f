"""deploy/compose: the files validate against the Compose specification, podman-compose can
plan them, each environment has what environments.md promises, and the committed
haproxy.cfg is what `waymark deploy haproxy-config` renders."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.deploy_support import waymark
from tests.servers import LOOPBACK, free_port, missing_dependency, require_binary, stop_process

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
FILES = {"dev": "compose.dev.yaml", "staging": "compose.staging.yaml", "prod": "compose.prod.yaml"}


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, shipped inside the docker-compose wheel
    (.ci/run installs it into .tools/ops without its dependencies)."""
    found = sorted((ROOT / ".tools" / "ops").glob("lib/python*/site-packages/compose/config/"
                                                  "compose_spec.json"))
    if not found:
        missing_dependency("compose_spec.json not found: .tools/ops/bin/pip install --no-deps "
                           "docker-compose==1.29.2 (see .ci/run)")
    return json.loads(found[0].read_text())


def load(env: str) -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / FILES[env]).read_text())


# `podman-compose --dry-run` still runs `podman network exists/create` and `podman volume
# inspect/create` for real, and creates missing bind-mount sources. The planner below puts
# this engine in front of podman on PATH: it answers those probes from a scratch directory,
# records what podman-compose would create, and refuses anything else; bind sources outside
# the repository (the engine socket) point into the scratch directory too.
ENGINE = """#!/bin/sh
state="$WAYMARK_PLAN_STATE"
for last; do :; done
case "$1 $2" in
  "network exists"|"volume inspect") test -e "$state/$1-$3" && echo '[{}]' ;;
  "network create"|"volume create") : > "$state/$1-$last" ;;
  *) echo "planning must not run: podman $*" >&2; exit 99 ;;
esac
"""


@dataclass
class Plan:
    """What `podman-compose up` would do: per service its networks and published ports, and
    the networks it would create, with whether they are internal."""
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, bool] = field(default_factory=dict)  # name -> internal
    stdout: str = ""


def plan_compose(*files: str, project: str = "waymark-check") -> Plan:
    binary = require_binary("podman-compose", "podman-compose")
    with tempfile.TemporaryDirectory(prefix="compose-plan-") as scratch:
        engine = Path(scratch) / "podman"
        engine.write_text(ENGINE)
        engine.chmod(0o755)
        env = {**os.environ, "PATH": f"{scratch}:{os.environ['PATH']}",
               "WAYMARK_PLAN_STATE": scratch, "CONTAINER_SOCKET": f"{scratch}/engine.sock"}
        args = [binary, "--dry-run", "-p", project]
        for name in files:
            args += ["-f", str(COMPOSE / name)]
        out = subprocess.run([*args, "up", "-d"], capture_output=True, text=True, timeout=120,
                             check=False, cwd=COMPOSE, env=env)
    assert out.returncode == 0 and "planning must not run" not in out.stderr, out.stderr
    plan = Plan(stdout=out.stdout)
    prefix = f"{project}_"
    for line in out.stdout.splitlines():
        if line.startswith("[") and "'network', 'create'" in line:
            call = ast.literal_eval(line)
            plan.networks[call[-1].removeprefix(prefix)] = "--internal" in call
        elif line.startswith("podman run"):
            words = line.split()
            if "--entrypoint" in words:  # a JSON list follows: no options after it
                words = words[:words.index("--entrypoint")]
            name = words[2].removeprefix(f"--name={prefix}").rsplit("_", 1)[0]
            nets = words[words.index("--net") + 1]
            plan.services[name] = {
                "networks": {n.removeprefix(prefix) for n in nets.split(",") if n},
                "ports": [words[i + 1] for i, w in enumerate(words) if w == "-p"],
                "network_mode": words[words.index("--network") + 1]
                if "--network" in words else None}
    return plan


@pytest.mark.parametrize("env", sorted(FILES))
def test_compose_file_matches_the_specification(env: str) -> None:
    import jsonschema

    doc = load(env)
    jsonschema.Draft201909Validator(compose_schema()).validate(doc)
    # bind-mounted files and directories exist (secrets are created by the operator)
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), f"{env}/{name}: {source} is missing"


def test_schema_check_is_real() -> None:
    import jsonschema

    doc = load("prod")
    doc["services"]["app1"]["restart_policy"] = "always"  # not a Compose key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(compose_schema()).validate(doc)


@pytest.mark.parametrize("env", sorted(FILES))
def test_podman_compose_plans_every_service(env: str) -> None:
    plan = plan_compose(FILES[env], project=f"waymark-check-{env}")
    assert set(plan.services) == set(load(env)["services"])
    declared = load(env).get("networks") or {"default": None}
    assert set(plan.networks) == set(declared)


def test_planning_creates_nothing_on_the_host() -> None:
    """podman-compose wants networks and volumes for prod; the plan makes none for real."""
    podman = require_binary("podman", "podman")
    project = "waymark-check-nothing"
    plan = plan_compose(FILES["prod"], project=project)
    assert plan.networks and "'volume', 'create'" in plan.stdout
    for kind in ("network", "volume"):
        listed = subprocess.run([podman, kind, "ls", "--format", "{{.Name}}"], check=True,
                                capture_output=True, text=True).stdout.split()
        assert not [name for name in listed if name.startswith(project)], kind


def commands(service: dict[str, Any]) -> str:
    return " ".join(str(p) for key in ("entrypoint", "command") for p in service.get(key) or [])


def test_dev_has_hot_reload_and_stand_ins() -> None:
    services = load("dev")["services"]
    app = services["app"]
    assert "--reload" in app["command"] and "../../src:/src/src:ro" in app["volumes"]
    assert app["environment"]["WAYMARK_ENV"] == "dev"
    assert "WAYMARK_DATABASE_URL" not in app["environment"]  # SQLite by default
    assert {"redis", "mail", "mocks", "s3"} <= set(services)


def test_staging_runs_the_image_with_demo_data() -> None:
    services = load("staging")["services"]
    assert services["seed"]["command"] == ["seed-demo"]
    assert services["app"]["read_only"] is True
    assert "volumes" not in services["app"] or all(
        not v.startswith("../../src") for v in services["app"]["volumes"])
    assert {"mail", "mocks", "s3", "redis"} <= set(services)


def test_prod_has_a_balancer_two_replicas_and_the_ops_services() -> None:
    services = load("prod")["services"]
    replicas = [n for n, s in services.items() if "waymark serve" in commands(s)]
    assert len(replicas) >= 2
    for name in replicas:
        assert "--no-backup" in commands(services[name])  # one Litestream, not one per replica
        assert services[name]["read_only"] is True
    assert "litestream replicate" in commands(services["litestream"])
    assert {"haproxy", "redis", "prometheus", "alertmanager", "worker", "alloy"} <= set(services)
    # log shipping: Alloy reads the containers' stdout with the shipped configuration
    alloy_config = "../alloy/containers.alloy:/etc/alloy/config.alloy:ro"
    assert alloy_config in services["alloy"]["volumes"]
    assert (COMPOSE / alloy_config.split(":")[0]).resolve().is_file()
    cfg = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    for name in replicas:  # each replica is reached through its own WAF only
        waf = name.replace("app", "waf")
        assert f"server {name} {waf}:8080 check" in cfg
        assert services[waf]["environment"]["WAYMARK_UPSTREAM"] == f"{name}:8000"
        assert "waymark-waf" in services[waf]["image"]
    prometheus = yaml.safe_load((COMPOSE / "prod" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{n}:9464" for n in replicas)


TLS_CERT = "/run/secrets/tls_certificate"


def test_committed_haproxy_cfg_is_current_and_valid(tmp_path: Path) -> None:
    rendered = waymark("deploy", "haproxy-config", "--plan",
                       str(ROOT / "deploy" / "haproxy" / "compose-plan.toml"), "--bind",
                       f":443 ssl crt {TLS_CERT} alpn h2,http/1.1",
                       "--metrics-bind", ":8404", "--socket", "/var/run/haproxy/admin.sock")
    assert rendered.returncode == 0, rendered.stderr
    committed = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    assert rendered.stdout == committed.read_text(), (
        "deploy/haproxy/haproxy.cfg is stale: re-render it (command in compose-plan.toml)")
    # checked as compose runs it: with tls.cfg, and a certificate where the secret is
    from tests.security.test_tls import make_ca_and_cert

    make_ca_and_cert(tmp_path)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(committed.read_text().replace(TLS_CERT, str(tmp_path / "server.pem")))
    tls = tmp_path / "tls.cfg"
    tls.write_text((ROOT / "deploy/haproxy/tls.cfg").read_text().replace("{{http_bind}}", ":80"))
    haproxy = require_binary("haproxy", "haproxy")
    checked = subprocess.run([haproxy, "-c", "-f", str(cfg), "-f", str(tls)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_haproxy_config_refuses_bad_limits() -> None:
    out = waymark("deploy", "haproxy-config", "--plan",
                  str(ROOT / "deploy" / "haproxy" / "compose-plan.toml"), "--rate-limit", "0")
    assert out.returncode != 0 and "must be positive" in out.stderr


def test_mock_tile_server_and_geocoder_answer() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(COMPOSE / "mocks" / "mockservices.py"),
                             "--host", LOOPBACK, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        tile = httpx.get(base + "/tiles/3/4/2.png")
        assert tile.status_code == 200 and tile.content.startswith(b"\x89PNG")
        assert httpx.get(base + "/tiles/1/5/0.png").status_code == 404
        a = httpx.get(base + "/geocode", params={"q": "Edinburgh"}).json()
        b = httpx.get(base + "/geocode", params={"q": "edinburgh "}).json()
        assert a["features"][0]["geometry"] == b["features"][0]["geometry"]
        assert httpx.get(base + "/geocode", params={"q": " "}).status_code == 400
    finally:
        stop_process(proc)


def test_prod_serves_tls_and_publishes_nothing_in_plain_http_but_the_redirect() -> None:
    """The prod session cookie is Secure: the stack must serve HTTPS."""
    haproxy = load("prod")["services"]["haproxy"]
    assert sorted(haproxy["ports"]) == ["443:443", "80:80"]
    assert "tls_certificate" in haproxy["secrets"]
    assert "-f /tmp/tls.cfg" in commands(haproxy) and "{{http_bind}}/:80" in commands(haproxy)
    cfg = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    assert f"bind :443 ssl crt {TLS_CERT}" in cfg
    app = load("prod")["services"]["app1"]
    assert app["environment"]["WAYMARK_PUBLIC_URL"].startswith("${WAYMARK_PUBLIC_URL:-https://")


def test_prod_never_starts_on_a_failed_restore() -> None:
    """init restores with --boot under `set -e` (a failed restore exits non-zero), and every
    Waymark service waits for init to have *succeeded*; Litestream refuses a missing database."""
    services = load("prod")["services"]
    init = commands(services["init"])
    assert init.startswith("/bin/sh -c set -e;") and "waymark restore --boot" in init
    assert "||" not in init  # no fallback to an empty database
    for name, service in services.items():
        if name != "init" and "waymark" in str(service.get("image", "")) and \
                "waf" not in str(service.get("image", "")):
            assert service["depends_on"]["init"] == {
                "condition": "service_completed_successfully"}, name
    assert 'test -f "$$WAYMARK_DATA_DIR/waymark.db" ||' in commands(services["litestream"])


def test_prod_backup_lag_is_measured_against_litestream() -> None:
    """The worker's backup_lag job finds Litestream's process (shared PID namespace) and its
    configuration where the settings say (<data dir>/litestream.yml): the lag then measures
    the replica, not the time since the last sync (status.backup_status)."""
    from waymark.backup.litestream import config_path
    from waymark.settings import load_settings

    services = load("prod")["services"]
    assert services["worker"]["pid"] == "service:litestream"
    worker_settings = load_settings({"WAYMARK_DATA_DIR": "/var/lib/waymark"})  # the image's
    written = f'-config "$$WAYMARK_DATA_DIR/{config_path(worker_settings).name}"'
    assert written in commands(services["litestream"])
    assert str(config_path(worker_settings)) == "/var/lib/waymark/litestream.yml"
