"""A deploy plan: the app instances on this host, the HAProxy in front, and how to run a release.

Plans are TOML files (deploy/haproxy/plan.example.toml). A *release* is a directory holding an
installed Waymark (a virtualenv: ``<release>/bin/waymark``); commands name it ``{release}``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DeployError(RuntimeError):
    """A deploy step failed; the message says which and what was done about it."""


@dataclass(frozen=True)
class Instance:
    name: str  # the HAProxy server name
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


DEFAULT_COMMAND = ("{release}/bin/waymark", "serve", "--host", "{host}", "--port", "{port}",
                   "--no-migrate", "--no-job-worker", "--no-backup")


@dataclass(frozen=True)
class Plan:
    state_dir: Path
    haproxy_socket: Path
    frontend_url: str
    instances: tuple[Instance, ...]
    backend: str = "be_app"
    command: tuple[str, ...] = DEFAULT_COMMAND
    migrate: tuple[str, ...] = ("{release}/bin/waymark", "migrate")
    check: tuple[str, ...] = ("{release}/bin/waymark", "check", "--deploy")
    smoke: tuple[str, ...] = ("/readyz", "/healthz", "/api/v1/maps")
    env: dict[str, str] = field(default_factory=dict)
    drain_timeout: float = 30.0  # long requests and websockets get this long to finish
    ready_timeout: float = 60.0  # a new process must answer /readyz 200 within this
    ready_grace: float = 15.0  # ... and within this once it answers at all (it has booted)
    stop_timeout: float = 30.0  # SIGTERM, then SIGKILL after this
    settle_seconds: float = 1.0  # pause between instances so HAProxy sees the server UP

    def render(self, template: tuple[str, ...], release: Path, instance: Instance | None = None
               ) -> list[str]:
        values = {"release": str(release)}
        if instance is not None:
            values.update(name=instance.name, host=instance.host, port=str(instance.port))
        return [part.format(**values) for part in template]


def _tuple(raw: Any, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise DeployError(f"plan: {key} must be a list of strings")
    return tuple(raw)


def load_plan(path: Path) -> Plan:
    """Read and check a plan file; relative paths are relative to the plan's directory."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise DeployError(f"cannot read plan {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeployError(f"plan {path} is not valid TOML: {exc}") from None
    base = path.parent

    def rel(key: str) -> Path:
        if not isinstance(raw.get(key), str):
            raise DeployError(f"plan: {key} is required (a path)")
        p = Path(raw[key])
        return p if p.is_absolute() else (base / p).resolve()

    items = raw.get("instances")
    if not isinstance(items, list) or not items:
        raise DeployError("plan: at least one [[instances]] (name, port) is required")
    instances = []
    for item in items:
        try:
            instances.append(Instance(str(item["name"]), int(item["port"]),
                                      str(item.get("host", "127.0.0.1"))))
        except (KeyError, TypeError, ValueError):
            raise DeployError(f"plan: instance {item!r} needs a name and an integer port") from None
    if len({i.name for i in instances}) != len(instances):
        raise DeployError("plan: instance names must be unique")
    if not isinstance(raw.get("frontend_url"), str):
        raise DeployError("plan: frontend_url is required (the HAProxy address clients use)")
    kwargs: dict[str, Any] = {}
    for key in ("command", "migrate", "check", "smoke"):
        if key in raw:
            kwargs[key] = _tuple(raw[key], key)
    for key in ("drain_timeout", "ready_timeout", "ready_grace", "stop_timeout",
                "settle_seconds"):
        if key in raw:
            kwargs[key] = float(raw[key])
    if "backend" in raw:
        kwargs["backend"] = str(raw["backend"])
    env = raw.get("env", {})
    if not isinstance(env, dict):
        raise DeployError("plan: [env] must be a table of strings")
    return Plan(state_dir=rel("state_dir"), haproxy_socket=rel("haproxy_socket"),
                frontend_url=raw["frontend_url"].rstrip("/"), instances=tuple(instances),
                env={str(k): str(v) for k, v in env.items()}, **kwargs)
