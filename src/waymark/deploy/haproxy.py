"""HAProxy: render its configuration for a plan, and drive servers through its runtime API.

The runtime API is a line protocol on a Unix socket (``stats socket ... level admin``);
each connection takes one command and answers until it closes.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from waymark.deploy.plan import DeployError, Plan

TEMPLATE = Path(__file__).with_name("haproxy.cfg.tmpl")


@dataclass(frozen=True)
class LimitOptions:
    bind: str = "127.0.0.1:8080"
    metrics_bind: str = "127.0.0.1:8404"
    conn_limit: int = 100  # concurrent connections per client IP
    rate_limit: int = 500  # requests per client IP per 10 s
    maxconn: int = 4096
    server_maxconn: int = 200  # queue in HAProxy beyond this many requests per app process


def render_config(plan: Plan, options: LimitOptions, socket_path: str | None = None) -> str:
    """The haproxy.cfg for ``plan``: one ``server`` line per instance, checked on /readyz."""
    servers = "\n".join(f"    server {i.name} {i.host}:{i.port} check" for i in plan.instances)
    values = {
        "socket": socket_path or str(plan.haproxy_socket), "bind": options.bind,
        "metrics_bind": options.metrics_bind, "conn_limit": str(options.conn_limit),
        "rate_limit": str(options.rate_limit), "maxconn": str(options.maxconn),
        "server_maxconn": str(options.server_maxconn), "backend": plan.backend,
        "servers": servers,
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


class RuntimeApi:
    """A client of one HAProxy's admin socket."""

    def __init__(self, path: Path, backend: str) -> None:
        self.path = path
        self.backend = backend

    def command(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(str(self.path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise DeployError(f"HAProxy runtime API at {self.path}: {exc}") from None
        answer = b"".join(chunks).decode(errors="replace")
        if answer.strip() and not answer.startswith("#") and (
                "No such" in answer or "Unknown" in answer or "denied" in answer.lower()):
            raise DeployError(f"HAProxy refused {line!r}: {answer.strip()}")
        return answer

    def set_state(self, server: str, state: str) -> None:
        """ready | drain | maint for one server of the backend."""
        self.command(f"set server {self.backend}/{server} state {state}")

    def stats(self) -> dict[str, dict[str, str]]:
        """The backend's servers' stat rows (scur, status, ...) by server name."""
        text = self.command("show stat -1 4 -1").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {r["svname"]: r for r in rows if r.get("pxname") == self.backend}

    def server(self, name: str) -> dict[str, str]:
        row = self.stats().get(name)
        if row is None:
            raise DeployError(f"HAProxy backend {self.backend} has no server {name}")
        return row

    def wait_drained(self, name: str, timeout: float) -> bool:
        """Wait until no request is in flight on ``name``; False when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(name).get("scur") in {"0", ""}:
                return True
            time.sleep(0.05)
        return False

    def wait_status(self, name: str, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server(name).get("status", "").startswith(prefix):
                return True
            time.sleep(0.05)
        return False
