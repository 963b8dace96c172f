"""A second `waymark serve` refuses to start beside a running one: on the same port always,
on the same data dir when the embedded backends (no WAYMARK_REDIS_URL) would be split
between them. With Redis, several may share a data dir (the documented scale-out)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.serve_process import STOP_GRACE_SECONDS, Served, start_serve
from tests.redis_servers import RedisServer, redis_server  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def first(tmp_path: Path) -> Iterator[Served]:
    served = start_serve(tmp_path / "data", tmp_path / "first.log")
    try:
        served.wait_ready()
        yield served
    finally:
        stop(served)


def stop(served: Served) -> None:
    if served.proc.poll() is None:
        os.killpg(served.proc.pid, signal.SIGTERM)
        try:
            served.proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            served.kill_group()


def refused(served: Served) -> str:
    """The second start's output, once it has exited (it must, by itself)."""
    try:
        code = served.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        stop(served)
        pytest.fail("the second `waymark serve` started:\n" + served.log_text()[-3000:])
    assert code != 0, served.log_text()
    return served.log_text()


def test_second_serve_on_the_same_data_dir_and_port_is_refused(first: Served,
                                                               tmp_path: Path) -> None:
    second = start_serve(tmp_path / "data", tmp_path / "second.log", port=first.port)
    out = refused(second)
    assert f"is already served by another `waymark serve` (pid {first.proc.pid}" in out, out
    assert "WAYMARK_REDIS_URL" in out  # how to run several on purpose
    assert first.ready()  # the running one is untouched


def test_same_data_dir_on_another_port_is_refused_without_redis(first: Served,
                                                                tmp_path: Path) -> None:
    out = refused(start_serve(tmp_path / "data", tmp_path / "second.log"))
    assert "is already served by another `waymark serve`" in out, out


def test_another_data_dir_on_the_same_port_is_refused(first: Served, tmp_path: Path) -> None:
    out = refused(start_serve(tmp_path / "other", tmp_path / "second.log", port=first.port))
    assert f"127.0.0.1:{first.port} is already in use" in out, out
    assert first.ready()


def test_with_redis_several_may_share_a_data_dir(tmp_path: Path,
                                                 redis_server: RedisServer) -> None:  # noqa: F811
    servers: list[Served] = []
    try:
        for i in range(2):  # one after the other: the first one migrates the new database
            servers.append(start_serve(tmp_path / "data", tmp_path / f"s{i}.log",
                                       WAYMARK_REDIS_URL=redis_server.url))
            servers[-1].wait_ready()
        assert servers[0].ready()
    finally:
        for served in servers:
            stop(served)


def test_demo_password_comes_last_and_logs_in(tmp_path: Path) -> None:
    import re

    import httpx

    served = start_serve(tmp_path / "data", tmp_path / "demo.log", WAYMARK_DEMO_DATA="true")
    try:
        served.wait_log("demo user:")
        log = served.log_text()
        password = re.search(r"demo user: demo@waymark\.invalid (?:password|\(password printed "
                             r"once\)): (\S+)", log).group(1)
        assert log.index("Started worker-1") < log.index("demo user:"), log  # after start-up
        assert "waymark user reset-password demo@waymark.invalid" in log
        r = httpx.post(served.base + "/api/v1/auth/login", timeout=30,
                       json={"email": "demo@waymark.invalid", "password": password})
        assert r.status_code == 200, r.text
    finally:
        stop(served)
