"""`waymark serve` as a real process group on loopback, for the start/stop tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.deploy_support import WAYMARK
from tests.servers import LOOPBACK, free_port

# What docs/operations/deploy.md promises: with nothing in flight, `waymark serve` exits
# this long after a SIGTERM to its process group (the deploy files' stop timeouts).
STOP_GRACE_SECONDS = 30


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({"WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_METRICS_PORT": "0", "WAYMARK_ENCRYPT_OBJECTS": "false", **extra})
    return env


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited ({self.proc.returncode}) before {what}:\n"
                                     + self.log_text()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout}s:\n" + self.log_text()[-3000:])
            time.sleep(0.05)

    def wait_log(self, text: str, timeout: float = 120) -> None:
        self.wait_for(repr(text), lambda: text in self.log_text(), timeout)

    def ready(self) -> bool:
        try:
            return httpx.get(self.base + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 120) -> None:
        self.wait_for("/readyz 200", self.ready, timeout)

    def group_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.proc.pid:
                        pids.append(int(entry.name))
                except ProcessLookupError:
                    pass
        return pids

    def kill_group(self) -> None:
        """Last resort after a failed stop (SIGKILL to every process of the group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_serve(data_dir: Path, log: Path, *args: str, port: int | None = None,
                **env_extra: str) -> Served:
    """Start `waymark serve` in a new session (its own process group); not waited for."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(WAYMARK), "serve", "--host", LOOPBACK, "--port", str(port),
                                 "--no-backup", *args], env=serve_env(data_dir, **env_extra),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Served(proc, f"http://{LOOPBACK}:{port}", log)
