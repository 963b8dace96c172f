"""The real app under granian on a loopback port, for the scanners and proxies in front of it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import LOOPBACK, free_port, readyz_ok, stop_process

NO_LIMITS = "login=off,signup=off,write=off,upload=off,anon_read=off"


@dataclass
class App:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_app(data_dir: Path, **env_overrides: str) -> Iterator[App]:
    from waymark.db.migrate import upgrade

    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data_dir / 'waymark.db'}"
    upgrade(database_url)
    port = free_port()
    env = {**os.environ, "WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DATABASE_URL": database_url,
           "WAYMARK_DEMO_DATA": "false", "WAYMARK_JOBS_IMMEDIATE": "true",
           "WAYMARK_METRICS_PORT": "0", "WAYMARK_RATE_LIMITS": NO_LIMITS,
           "WAYMARK_SNAPSHOT_DELAY_MS": "50", "WAYMARK_PUBLIC_URL": f"http://{LOOPBACK}:{port}",
           **env_overrides}
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--host", LOOPBACK,
             "--port", str(port), "--workers", "1", "--no-access-log", "waymark.asgi:app"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90  # the machine is shared: startup can be slow
        while not readyz_ok(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"waymark did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield App(port, proc, log_path)
    finally:
        stop_process(proc)


def call(app_url: str, method: str, path: str, body: object = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict, http.client.HTTPResponse]:
    """A JSON request to the app (setup steps of the tests)."""
    host, port = app_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                   **(headers or {})})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, (json.loads(raw) if raw and raw[:1] in b"[{" else {}), resp


def api_token(app_url: str, email: str, password: str = "a long fuzzing password") -> str:
    """Sign up, then create a write-scope API token from that session."""
    status, user, resp = call(app_url, "POST", "/api/v1/auth/signup",
                              {"email": email, "password": password})
    assert status == 201, user
    cookie = resp.getheader("set-cookie", "").split(";", 1)[0]
    status, token, _ = call(app_url, "POST", "/api/v1/tokens", {"name": "t", "scope": "write"},
                            {"Cookie": cookie, "X-CSRF-Token": user["csrf_token"]})
    assert status == 201, token
    return token["token"]
