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
    for name in replicas:
        assert f"server {name} {name}:8000 check" in cfg
    prometheus = yaml.safe_load((COMPOSE / "prod" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{n}:9464" for n in replicas)


def test_committed_haproxy_cfg_is_current_and_valid() -> None:
    rendered = waymark("deploy", "haproxy-config", "--plan",
                       str(ROOT / "deploy" / "haproxy" / "compose-plan.toml"), "--bind", ":80",
                       "--metrics-bind", ":8404", "--socket", "/var/run/haproxy/admin.sock")
    assert rendered.returncode == 0, rendered.stderr
    committed = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    assert rendered.stdout == committed.read_text(), (
        "deploy/haproxy/haproxy.cfg is stale: re-render it (command in compose-plan.toml)")
    haproxy = require_binary("haproxy", "haproxy")
    checked = subprocess.run([haproxy, "-c", "-f", str(committed)], capture_output=True,
                             text=True, check=False)
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
