"""Shared parts of the deploy tests: release directories, a real HAProxy, an API user."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import LOOPBACK, free_port, require_binary, stop_process

WAYMARK = Path(sys.executable).parent / "waymark"
METRICS_TOKEN = "deploy-test-metrics-token"


def make_release(root: Path, name: str, serve_env: dict[str, str] | None = None,
                 env: dict[str, str] | None = None) -> Path:
    """A release directory whose bin/waymark runs this checkout tagged WAYMARK_COMMIT=name.

    ``serve_env`` is exported for `serve` only: a release that breaks at run time but passes
    the pre-deploy migrate and check steps. ``env`` is exported for every command.
    """
    release = root / name
    (release / "bin").mkdir(parents=True)
    exports = "".join(f"  export {k}='{v}'\n" for k, v in (serve_env or {}).items())
    always = "".join(f"export {k}='{v}'\n" for k, v in (env or {}).items())
    script = release / "bin" / "waymark"
    script.write_text(f"#!/bin/sh\nexport WAYMARK_COMMIT={name}\n{always}"
                      f'if [ "$1" = serve ]; then\n{exports}  :\nfi\n'
                      f'exec {WAYMARK} "$@"\n')
    script.chmod(0o755)
    return release


def app_env(root: Path) -> dict[str, str]:
    """A production profile that passes `waymark check --deploy` on loopback."""
    (root / "backup").mkdir(exist_ok=True)
    return {
        "WAYMARK_ENV": "prod",
        "WAYMARK_SECRET_KEY": "deploy-test-" + "s" * 40,
        "WAYMARK_DATA_DIR": str(root / "data"),
        "WAYMARK_BACKUP_URL": f"file://{root / 'backup'}",
        "WAYMARK_COOKIE_SECURE": "true",
        "WAYMARK_METRICS_PORT": "0",
        "WAYMARK_METRICS_TOKEN": METRICS_TOKEN,
        "WAYMARK_TRUSTED_PROXIES": LOOPBACK,
        "WAYMARK_RATE_LIMITS": "write=off,signup=off",
        "WAYMARK_LOG_LEVEL": "warning",
    }


def write_plan(root: Path, env: dict[str, str], names_ports: list[tuple[str, int]],
               frontend: str, **timeouts: float) -> Path:
    lines = [
        f'state_dir = "{root / "state"}"',
        f'haproxy_socket = "{root / "haproxy.sock"}"',
        f'frontend_url = "{frontend}"',
        'smoke = ["/readyz", "/healthz", "/api/v1/maps"]',
        *(f"{k} = {v}" for k, v in timeouts.items()),
        "[env]",
        *(f'{k} = "{v}"' for k, v in env.items()),
    ]
    for name, port in names_ports:
        lines += ["[[instances]]", f'name = "{name}"', f"port = {port}"]
    path = root / "plan.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def waymark(*args: str, env: dict[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WAYMARK), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


@dataclass
class HAProxy:
    process: subprocess.Popen[bytes]
    url: str
    socket: Path

    def stop(self) -> None:
        stop_process(self.process)


def start_haproxy(root: Path, plan: Path, port: int, *limits: str, name: str = "haproxy"
                  ) -> HAProxy:
    """Render the plan's haproxy.cfg (``limits``: extra CLI options), check it, run it."""
    binary = require_binary("haproxy", "haproxy")
    sock = root / f"{name}.sock"
    rendered = waymark("deploy", "haproxy-config", "--plan", str(plan), "--socket", str(sock),
                       "--bind", f"{LOOPBACK}:{port}", "--metrics-bind",
                       f"{LOOPBACK}:{free_port()}", *limits)
    assert rendered.returncode == 0, rendered.stderr
    cfg = root / f"{name}.cfg"
    cfg.write_text(rendered.stdout)
    checked = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with open(root / f"{name}.log", "wb") as log:
        proc = subprocess.Popen([binary, "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError((root / f"{name}.log").read_text())
        time.sleep(0.05)
    return HAProxy(proc, f"http://{LOOPBACK}:{port}", sock)


def api_user(base_url: str) -> tuple[dict[str, str], str, str]:
    """Sign up through the load balancer, make a write token and a map; (headers, map, layer)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        r = client.post("/api/v1/auth/signup", json={
            "email": f"deploy-{time.time_ns()}@example.com", "password": "a-long-password-42"})
        assert r.status_code == 201, r.text
        cookie = r.headers["set-cookie"].split(";", 1)[0]
        r = client.post("/api/v1/tokens", json={"name": "load", "scope": "write"},
                        headers={"Cookie": cookie, "X-CSRF-Token": r.json()["csrf_token"]})
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = client.post("/api/v1/maps", json={"title": "deploy load"}, headers=headers)
        assert r.status_code == 201, r.text
        return headers, r.json()["id"], r.json()["layers"][0]["id"]


def served_commit(instance_url: str) -> str:
    """The WAYMARK_COMMIT of the process answering at ``instance_url`` (waymark_build_info)."""
    r = httpx.get(instance_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                  timeout=10)
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if line.startswith("waymark_build_info{"):
            return line.split('commit="', 1)[1].split('"', 1)[0]
    raise AssertionError("no waymark_build_info in /metrics")
