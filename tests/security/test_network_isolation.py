"""Network isolation of the compose stacks (issue 8, point 4): only the load balancer is
published, and Redis, the database and object storage are reachable from Waymark's own
processes alone, on internal networks.

Checked on what podman-compose would run (its dry-run plan: each container's networks and
published ports, each network's --internal flag), against roles read from the compose files
(which service is a store, a balancer, a Waymark process, which hosts a service names). No
containers or networks are created: podman's bridge networks use private-range addresses,
and tests here stay on loopback. Kubernetes: tests/integration/test_deploy_k8s.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_deploy_compose import (
    COMPOSE,
    FILES,
    Plan,
    compose_schema,
    load,
    plan_compose,
)

STORE_IMAGES = {"redis", "valkey", "postgres", "postgis", "mysql", "mariadb", "moto", "minio"}
BALANCER_IMAGES = {"haproxy", "nginx", "caddy", "traefik", "envoy"}
DATA_DIR = "/var/lib/waymark"  # the image's WAYMARK_DATA_DIR: SQLite file and local objects
ISOLATED = ("staging", "prod")


def image_name(service: dict[str, Any]) -> str:
    """`docker.io/library/redis:7-alpine` -> `redis`."""
    return str(service.get("image", "")).rsplit("/", 1)[-1].split(":", 1)[0].lower()


def is_waf(service: dict[str, Any]) -> bool:
    return image_name(service).endswith("-waf")


def is_waymark(service: dict[str, Any]) -> bool:
    return "waymark" in str(service.get("image", "")) and not is_waf(service)


def config_text(service: dict[str, Any]) -> str:
    env = service.get("environment") or {}
    values = env.values() if isinstance(env, dict) else env
    parts = [str(v) for v in values]
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts += [str(value)] if isinstance(value, str) else [str(v) for v in value]
    return " ".join(parts)


def names_host(service: dict[str, Any], host: str) -> bool:
    """Whether the service's settings or command address `host` (redis://redis:6379,
    http://s3:5000, ...)."""
    return re.search(rf"(//|@){re.escape(host)}[:/]", config_text(service)) is not None


def is_serving(service: dict[str, Any]) -> bool:
    """A long-running Waymark process: the web app or the job worker."""
    words = set(re.split(r"[\s\"',\[\]]+", config_text(service)))
    return is_waymark(service) and bool(words & {"serve", "worker"})


def mounted_file(service: dict[str, Any], target: str) -> Path | None:
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target and source.startswith("."):
            return (COMPOSE / source).resolve()
    return None


def peers(plan: Plan, name: str) -> set[str]:
    """Services sharing at least one network with `name`."""
    mine = plan.services[name]["networks"]
    return {other for other, s in plan.services.items()
            if other != name and s["networks"] & mine}


def isolation_problems(doc: dict[str, Any], plan: Plan, *, strict: bool = True) -> list[str]:
    """Every way the planned stack breaks the isolation rules (empty: none). `strict`: the
    stack as shipped, where only the balancer(s) may publish; otherwise (operator overrides)
    other services may publish on 127.0.0.1 as long as they reach no store."""
    services = doc["services"]
    stores = {n for n, s in services.items() if image_name(s) in STORE_IMAGES}
    balancers = {n for n, s in services.items() if image_name(s) in BALANCER_IMAGES}
    published = {n for n, s in plan.services.items() if s["ports"]}
    problems: list[str] = []
    if not stores:
        problems.append("no store found: the roles below would check nothing")

    # published: the balancer; without one (staging), only loopback binds
    if balancers and strict and published != balancers:
        problems.append(f"published {sorted(published)}, expected only {sorted(balancers)}")
    for name in published - balancers:
        if not all(p.startswith("127.0.0.1:") for p in plan.services[name]["ports"]):
            problems.append(f"{name} publishes {plan.services[name]['ports']} beyond loopback")
    for name in published:
        if all(plan.networks[n] for n in plan.services[name]["networks"]):
            problems.append(f"{name} publishes a port but is only on internal networks")

    # stores: unpublished, internal networks only, reached by the Waymark processes alone
    for store in sorted(stores):
        planned = plan.services[store]
        if planned["ports"]:
            problems.append(f"{store} publishes {planned['ports']}")
        for net in sorted(planned["networks"]):
            if not plan.networks[net]:
                problems.append(f"{store} is on {net}, which is not internal")
        reach = peers(plan, store)
        for name in sorted(reach):
            if not (is_waymark(services[name]) and names_host(services[name], store)):
                problems.append(f"{name} can reach {store} but is not a Waymark process "
                                f"that uses it")
        for name in sorted(reach & balancers):
            problems.append(f"balancer {name} can reach {store}")
        for name, service in sorted(services.items()):
            if is_serving(service) and names_host(service, store) and name not in reach:
                problems.append(f"{name} uses {store} but cannot reach it")

    # the database and local objects: a volume at the data dir, mounted by Waymark alone
    data_volumes = {v.split(":")[0] for s in services.values() if is_serving(s)
                    for v in s.get("volumes", []) if v.split(":")[1:2] == [DATA_DIR]}
    for name, service in sorted(services.items()):
        for volume in service.get("volumes", []):
            if volume.split(":")[0] in data_volumes and (
                    not is_waymark(service) or name in balancers):
                problems.append(f"{name} mounts the data volume {volume.split(':')[0]}")

    # isolation must not cut what the stack needs: balancer -> servers, Prometheus -> targets
    for name in sorted(balancers):
        cfg = mounted_file(services[name], "/usr/local/etc/haproxy/haproxy.cfg")
        text = cfg.read_text() if cfg else ""
        hosts = re.findall(r"^\s*server\s+\S+\s+([\w.-]+):\d+", text, re.MULTILINE)
        wafs = {n for n, s in services.items() if is_waf(s)}
        for host in hosts:
            if host not in peers(plan, name):
                problems.append(f"balancer {name} cannot reach its server {host}")
            if wafs and host not in wafs:  # with WAFs, no way around them
                problems.append(f"balancer {name} sends to {host} around the WAF")
    for name, service in sorted(services.items()):  # each WAF reaches its replica
        upstream = (service.get("environment") or {}).get("WAYMARK_UPSTREAM", "")
        if is_waf(service) and upstream.split(":")[0] not in peers(plan, name):
            problems.append(f"{name} cannot reach its upstream {upstream}")
    for name, service in sorted(services.items()):
        cfg = mounted_file(service, "/etc/prometheus/prometheus.yml")
        if image_name(service) != "prometheus" or cfg is None:
            continue
        prom = yaml.safe_load(cfg.read_text())
        groups = [g for job in prom.get("scrape_configs", [])
                  for g in job.get("static_configs", [])]
        groups += [g for am in prom.get("alerting", {}).get("alertmanagers", [])
                   for g in am.get("static_configs", [])]
        for target in (t for g in groups for t in g["targets"]):
            if target.split(":")[0] not in peers(plan, name):
                problems.append(f"{name} cannot reach its target {target}")
    return problems


@pytest.fixture(scope="module")
def plans() -> dict[str, Plan]:
    return {env: plan_compose(FILES[env], project=f"waymark-check-{env}") for env in ISOLATED}


@pytest.mark.parametrize("env", ISOLATED)
def test_only_the_entry_point_is_published_and_stores_are_reached_by_the_app_alone(
        env: str, plans: dict[str, Plan]) -> None:
    doc = load(env)
    assert isolation_problems(doc, plans[env]) == []
    # the roles were found, so the rules above checked something
    stores = {n for n, s in doc["services"].items() if image_name(s) in STORE_IMAGES}
    assert "redis" in stores and (env == "prod" or "s3" in stores)
    assert any(is_serving(s) for s in doc["services"].values())


def test_prod_publishes_only_the_balancer_and_it_shares_no_network_with_a_store(
        plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    assert {n for n, s in plan.services.items() if s["ports"]} == {"haproxy"}
    store_nets = plan.services["redis"]["networks"]
    assert store_nets and not plan.services["haproxy"]["networks"] & store_nets


def test_operator_override_publishes_the_monitoring_uis_on_loopback_only() -> None:
    import jsonschema

    override = yaml.safe_load((COMPOSE / "compose.prod.ops.yaml").read_text())
    jsonschema.Draft201909Validator(compose_schema()).validate(override)
    plan = plan_compose(FILES["prod"], "compose.prod.ops.yaml", project="waymark-check-ops")
    extra = {n for n, s in plan.services.items() if s["ports"]} - {"haproxy"}
    assert extra == set(override["services"])
    assert isolation_problems(load("prod"), plan, strict=False) == []


def _publish(name: str, port: str) -> Callable[[Plan], None]:
    return lambda plan: plan.services[name]["ports"].append(port)


def _join(name: str, net: str) -> Callable[[Plan], None]:
    return lambda plan: plan.services[name]["networks"].add(net)


def _leave(name: str, net: str) -> Callable[[Plan], None]:
    return lambda plan: plan.services[name]["networks"].discard(net)


MUTATIONS = {
    "redis publishes a port": (_publish("redis", "6379:6379"), "redis publishes"),
    "backend not internal": (lambda p: p.networks.__setitem__("backend", False),
                             "redis is on backend, which is not internal"),
    "balancer on backend": (_join("haproxy", "backend"), "balancer haproxy can reach redis"),
    "prometheus on backend": (_join("prometheus", "backend"),
                              "prometheus can reach redis but is not a Waymark process"),
    "redis on edge": (_join("redis", "edge"), "redis is on edge"),
    "app1 off backend": (_leave("app1", "backend"), "app1 uses redis but cannot reach it"),
    "haproxy off edge": (_leave("haproxy", "edge"),
                         "haproxy publishes a port but is only on internal networks"),
    "app1 on backend only": (lambda p: p.services["app1"].__setitem__("networks", {"backend"}),
                             "waf1 cannot reach its upstream app1:8000"),
    "waf2 off edge": (_leave("waf2", "edge"), "balancer haproxy cannot reach its server waf2"),
    "prometheus off metrics": (_leave("prometheus", "metrics"), "cannot reach its target"),
    "a replica published": (_publish("app2", "8000:8000"), "expected only ['haproxy']"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_isolation_check_catches_a_broken_topology(mutation: str,
                                                   plans: dict[str, Plan]) -> None:
    change, expected = MUTATIONS[mutation]
    plan = copy.deepcopy(plans["prod"])
    change(plan)
    problems = isolation_problems(load("prod"), plan)
    assert any(expected in p for p in problems), problems


def test_isolation_check_catches_a_foreign_service_on_the_data_volume() -> None:
    doc = load("prod")
    doc["services"]["haproxy"]["volumes"].append("data:/var/lib/waymark:ro")
    plan = plan_compose(FILES["prod"], project="waymark-check-prod")
    assert "haproxy mounts the data volume data" in isolation_problems(doc, plan)
