"""One app instance as a local process: start a release on its port, wait for /readyz, stop.

Processes are started in their own session so they outlive the `waymark deploy` command
that started them; they are found again by the PID kept in the deploy state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from waymark.deploy.plan import Instance, Plan


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:  # reap it if it is our own exited child, so it does not linger as a zombie
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(plan: Plan, instance: Instance, release: Path, log_dir: Path) -> int:
    """Start ``release`` on ``instance``'s port; returns the PID (also its process group)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    # Instances share WAYMARK_DATA_DIR; each needs its own metrics directory, which
    # `waymark serve` empties on start (the default, <data_dir>/prometheus, would be shared).
    metrics_dir = plan.state_dir / "metrics" / instance.name
    metrics_dir.mkdir(parents=True, exist_ok=True)  # it must exist when metrics are imported
    env = {**os.environ, **plan.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with open(log_dir / f"{instance.name}.log", "ab") as log:
        proc = subprocess.Popen(plan.render(plan.command, release, instance), env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(plan.state_dir))
    return proc.pid


def stop(pid: int | None, timeout: float) -> None:
    """SIGTERM (the server finishes requests in flight, then exits); SIGKILL after ``timeout``."""
    if not alive(pid):
        return
    assert pid is not None
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def http_status(url: str, timeout: float = 3.0) -> int:
    """The HTTP status of a GET, or 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # nosec B310 - our own URL
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_ready(instance: Instance, pid: int, timeout: float, grace: float | None = None
               ) -> str | None:
    """None once /readyz answers 200; else why not (the process exited, or the last status).

    ``timeout`` bounds the whole start; ``grace`` bounds how long a process that already
    answers (so it has booted) may keep answering "not ready" -- its dependencies are
    unreachable, waiting longer only delays the rollback.
    """
    start = time.monotonic()
    deadline = start + timeout
    status = 0
    answering_since: float | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            return "the process exited"
        status = http_status(instance.url + "/readyz")
        if status == 200:
            return None
        if status and answering_since is None:
            answering_since = time.monotonic()
        if grace is not None and answering_since is not None and (
                time.monotonic() - answering_since > grace):
            return f"/readyz still answered {status} after {time.monotonic() - start:.0f}s"
        time.sleep(0.1)
    return f"/readyz still answered {status or 'nothing'} after {timeout:g}s"
