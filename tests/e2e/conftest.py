"""Browser tests: a real Waymark server (granian) and Debian's Chromium through Playwright.

The server runs on a free loopback port with its data in a temporary directory; the
front-end bundle is built first if it is missing. Every page fails its test on a browser
console error or an uncaught exception. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import (
    LOOPBACK,
    free_port,
    missing_dependency,
    readyz_ok,
    require_binary,
    stop_process,
)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytest.importorskip("playwright", reason="pip install playwright pytest-playwright (uv sync --dev)")


def ensure_assets() -> None:
    """Build the bundle (npm ci && npm run build) if src/waymark/static/dist has none."""
    from waymark.web_assets import assets_built, build_assets

    if assets_built():
        return
    if shutil.which("npm") is None:
        missing_dependency("npm not found: apt-get install nodejs npm (needed to build the UI)")
    build_assets(REPO)


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)


def start_server(data_dir: Path, **extra_env: str) -> LiveServer:
    from waymark.db.migrate import upgrade

    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{data_dir / 'waymark.db'}"
    upgrade(database_url)
    env = {**os.environ, "WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DATABASE_URL": database_url,
           "WAYMARK_DEMO_DATA": "false", "WAYMARK_JOBS_IMMEDIATE": "true",
           "WAYMARK_SNAPSHOT_DELAY_MS": "50", "WAYMARK_LOG_LEVEL": "warning",
           # every test signs up its own users, all from 127.0.0.1
           "WAYMARK_RATE_LIMITS": "signup=1000/hour,login=1000/minute", **extra_env}
    log_path = data_dir / "server.log"
    for _attempt in range(3):
        port = free_port()
        env["WAYMARK_PUBLIC_URL"] = f"http://{LOOPBACK}:{port}"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "granian", "--interface", "asgi", "--host", LOOPBACK,
                 "--port", str(port), "--workers", "1", "--no-access-log", "waymark.asgi:app"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if readyz_ok(port):
                return LiveServer(f"http://{LOOPBACK}:{port}", proc, data_dir, log_path, env)
            time.sleep(0.1)
        stop_process(proc)
    raise RuntimeError(f"waymark server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ensure_assets()
    server = start_server(tmp_path_factory.mktemp("e2e") / "var")
    yield server
    stop_process(server.process)


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    chromium = require_binary(os.environ.get("WAYMARK_CHROMIUM", "/usr/bin/chromium"), "chromium")
    return {**browser_type_launch_args, "executable_path": chromium, "args": CHROMIUM_ARGS}


class ConsoleWatch:
    """Collects console errors and page errors of every page it is attached to."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def attach(self, page):  # type: ignore[no-untyped-def]
        def on_console(msg):  # type: ignore[no-untyped-def]
            if msg.type == "error":
                self.errors.append(f"console error on {page.url}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error on {page.url}: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(
            f"HTTP {r.status} for {r.request.method} {r.url}"))
        return page

    def allow(self, fragment: str) -> None:
        """Expect an error containing `fragment` (e.g. the 404 of a page we open on purpose)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def console() -> Iterator[ConsoleWatch]:
    watch = ConsoleWatch()
    yield watch
    assert not watch.unexpected(), "browser console errors:\n" + "\n".join(watch.unexpected())


@pytest.fixture
def page(page, console):  # type: ignore[no-untyped-def]
    return console.attach(page)


@pytest.fixture
def screenshot():  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, **kwargs) -> Path:  # type: ignore[no-untyped-def]
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), **kwargs)
        return path

    return take
