"""SIGTERM to the process group of `waymark serve` ends every process of it, every time,
within the documented grace period, whatever the moment of the stop (workers still importing
the app, one worker serving and one starting, all ready)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.serve_process import STOP_GRACE_SECONDS, Served, start_serve
from tests.servers import LOOPBACK

pytestmark = pytest.mark.timeout(1800)

STOPS = 20


def _refused(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1).close()
        return False
    except OSError:
        return True


def _stop_group(served: Served, when: str) -> None:
    os.killpg(served.proc.pid, signal.SIGTERM)
    try:
        served.proc.wait(timeout=STOP_GRACE_SECONDS)
        # the wrapper exits last, but check the whole group: nothing may be left behind
        served.wait_for("an empty process group", lambda: not served.group_pids(),
                        timeout=STOP_GRACE_SECONDS)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
                for pid in served.group_pids()}
        served.kill_group()
        pytest.fail(f"stop {when}: still running after {STOP_GRACE_SECONDS}s: {left} ({exc!r})\n"
                    + served.log_text()[-3000:])


def test_sigterm_to_the_group_always_stops_it(tmp_path: Path) -> None:
    moments = ["while the workers import the app", "with one worker started",
               "when both workers serve"]
    for i in range(STOPS):
        when = moments[i % len(moments)]
        served = start_serve(tmp_path / "data", tmp_path / f"serve-{i}.log", "--workers", "2")
        try:
            if when == moments[0]:
                served.wait_log("Spawning worker-2")
            elif when == moments[1]:
                served.wait_log("Started worker-")
            else:
                served.wait_ready()
                served.wait_log("Started worker-1")
                served.wait_log("Started worker-2")
        except BaseException:
            served.kill_group()
            raise
        _stop_group(served, f"{i + 1} ({when})")
        if when == moments[2]:  # a stop during start-up may report the interrupted start
            assert served.proc.returncode == 0, served.log_text()[-3000:]
        assert _refused(served.port)
