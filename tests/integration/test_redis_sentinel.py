"""Sentinel: a primary, a replica and three sentinels; the primary is killed (SIGKILL) and
the app keeps working through and after the fail-over."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_servers import AppProcess, Http, SentinelGroup, start_apps, start_sentinel_group

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
pytestmark = pytest.mark.redis


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    g = start_sentinel_group()
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture
def app(tmp_path: Path, sqlite_template: Path, group: SentinelGroup) -> Iterator[AppProcess]:
    shutil.copyfile(sqlite_template, tmp_path / "waymark.db")
    (proc,) = start_apps(1, tmp_path, f"sqlite:///{tmp_path / 'waymark.db'}", group.url)
    try:
        yield proc
    finally:
        proc.stop()


def test_app_keeps_working_after_failover(app: AppProcess, group: SentinelGroup) -> None:
    import httpx
    from websockets.sync.client import connect

    alice = Http(app.base)
    alice.signup("alice@example.com")
    m = alice.request("POST", "/api/v1/maps", json={"title": "S", "visibility": "public"}).json()
    features = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}/features"
    assert alice.request("POST", features, json={"geometry": POINT}).status_code == 201
    # the session reached the replica before the primary dies (replication is asynchronous)
    assert group.primary.client().execute_command("WAIT", 1, 2000) >= 1
    old = group.primary.port
    with connect(f"{app.ws_base}/api/v1/maps/{m['id']}/ws", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        group.primary.kill()
        statuses = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # keep using the app during the fail-over
            statuses.append(alice.request("POST", features, json={"geometry": POINT}).status_code)
            statuses.append(httpx.get(app.base + f"/api/v1/maps/{m['id']}").status_code)
            if group.current_primary_port() not in (None, old) and \
                    httpx.get(app.base + "/readyz").json()["status"] == "ready":
                break
            time.sleep(0.2)
        assert group.current_primary_port() == group.replica.port, "sentinel did not fail over"
        assert all(s < 500 for s in statuses), sorted(set(statuses))
        # after fail-over: the session (made before) is still valid, real time works again
        assert alice.request("GET", "/api/v1/auth/me").status_code == 200
        r = alice.request("POST", features, json={"geometry": POINT})
        assert r.status_code == 201
        deadline = time.monotonic() + 15
        while True:
            msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg["type"] == "edit" and msg.get("feature", {}).get("id") == r.json()["id"]:
                assert msg["seq"] is not None  # numbered by the new primary
                break
    info = group.replica.client().info("replication")
    assert info["role"] == "master"


def test_edit_numbers_are_never_reused_after_a_failover(group: SentinelGroup) -> None:
    """Replication is asynchronous: the promoted replica may lack the last numbers the old
    primary gave out. The counter jumps on the new primary, so a client that saw those
    numbers sees a gap (and refetches) instead of dropping new events as already seen."""
    import asyncio

    from waymark.backends.redis.channels import FAILOVER_GAP, RedisChannels
    from waymark.backends.redis.hub import RedisHub

    async def publish_and_read(event: dict) -> int:  # type: ignore[type-arg]
        hub = RedisHub(group.url)
        try:
            channels = RedisChannels(hub)
            await channels.publish_many([("m1", event)])
            if hub.degraded:  # delivered locally only: not numbered
                raise RuntimeError("Redis unavailable")
            _, current = await channels.history("m1", 0)
            return current
        finally:
            await hub.close()

    assert asyncio.run(publish_and_read({"op": "feature.create"})) == 1
    assert asyncio.run(publish_and_read({"op": "feature.update"})) == 2
    assert group.primary.client().execute_command("WAIT", 1, 5000) >= 1
    old = group.primary.port
    group.primary.kill()
    deadline = time.monotonic() + 60
    while group.current_primary_port() in (None, old):
        assert time.monotonic() < deadline, "no fail-over"
        time.sleep(0.1)
    seq = None
    while seq is None:  # the app's client finds the new primary through Sentinel
        try:
            seq = asyncio.run(publish_and_read({"op": "feature.delete"}))
        except Exception:  # noqa: BLE001 - still switching
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert seq == 2 + FAILOVER_GAP
    assert asyncio.run(publish_and_read({"op": "feature.create"})) == 3 + FAILOVER_GAP
