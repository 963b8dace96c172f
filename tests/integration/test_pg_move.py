"""The rehearsed move from SQLite to PostgreSQL: docs/operations/scaling.md, "Moving to
PostgreSQL", step by step with the real commands, on a real `waymark serve` (under
Litestream, as in production) and a real PostgreSQL server.

The database holds the demo map, a 100,000-feature layer, history, members, an API token, a
trashed map and an import job. Before the move the API's view of it is read through HTTP
(every map, layer, feature, version, history entry and ETag); after the move the same
session cookie and the same API token read it again from the app on PostgreSQL: identical.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ApiClient
from tests.integration.move_support import PASSWORD, api_state, diff, populate, table_lines
from tests.integration.test_dr import (
    litestream_binary,
    start_serve,
    stop_serve,
    wait_ready,
    waymark,
)

pytestmark = [pytest.mark.postgres]
BIG = 100_000


def big_geojson(path: Path, n: int = BIG) -> Path:
    with path.open("w") as out:
        out.write('{"type": "FeatureCollection", "features": [')
        for i in range(n):
            out.write(("," if i else "") + json.dumps(
                {"type": "Feature", "geometry": {"type": "Point",
                                                 "coordinates": [-180 + (i % 3600) / 10, -60 + i / n * 120]},
                 "properties": {"name": f"point {i}", "rank": i % 7, "ratio": i / 3}}))
        out.write("]}")
    return path


def files_in(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def wait_job(client: ApiClient, job: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/jobs/{job}").json()["status"]
        if status in ("done", "failed"):
            assert status == "done"
            return
        time.sleep(0.2)
    raise AssertionError(f"import job {job} did not finish")


def test_rehearsed_move_from_sqlite_to_postgresql(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    litestream_binary()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env.update({
        "WAYMARK_DATA_DIR": str(data_dir),
        "WAYMARK_SECRET_KEY": "a-secret-key-that-is-long-enough-for-staging-use",
        "WAYMARK_BACKUP_URL": f"file://{tmp_path / 'backup'}",
        "WAYMARK_SESSION_STORE": "file",
        "WAYMARK_DEMO_DATA": "true",
        "WAYMARK_IMPORT_JOB_BYTES": "2000",
        "WAYMARK_METRICS_PORT": "0",
        "WAYMARK_RATE_LIMITS": "write=off,login=off,signup=off",
        "WAYMARK_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    })
    live = data_dir / "waymark.db"
    sqlite_url = f"sqlite:///{live}"

    # ---- the instance to move: SQLite, under Litestream --------------------------------
    waymark(env, "migrate")
    waymark(env, "user", "create", "alice@example.com", "--name", "Alice", "--password",
            PASSWORD)
    imported = waymark(env, "import", str(big_geojson(tmp_path / "big.geojson")),
                       "--owner", "alice@example.com").stdout
    big_map = re.search(rf"imported {BIG} features into map (\w+)", imported).group(1)  # type: ignore[union-attr]
    served = start_serve(env, tmp_path / "sqlite.log")
    try:
        wait_ready(served)
        demo_map = re.search(r"demo map: \S+/m/(\w+)", served.tail()).group(1)  # type: ignore[union-attr]
        alice, bob = ApiClient(httpx.Client(base_url=served.base, timeout=60)), \
            ApiClient(httpx.Client(base_url=served.base, timeout=60))
        assert alice.login("alice@example.com").status_code == 200
        bob.signup("bob@example.com", name="Bob")
        info = populate(alice, bob, import_bytes=4000)
        wait_job(alice, info["job"])
        big_layer = alice.get(f"/api/v1/maps/{big_map}/layers").json()[0]
        first = alice.get(f"/api/v1/maps/{big_map}/layers/{big_layer['id']}/features",
                          params={"limit": 1}).json()["features"][0]
        r = alice.patch(f"/api/v1/maps/{big_map}/layers/{big_layer['id']}/features/{first['id']}",
                        json={"properties": {"name": "edited before the move"}},
                        headers={"If-Match": f'"{first["version"]}"'})
        assert r.status_code == 200, r.text
        maps = [*info["maps"], big_map, demo_map]
        before = api_state(alice.get, maps, job=info["job"])
        assert len(before[big_map][big_layer["id"]]["features"]) == BIG
        assert before[demo_map]["map"]["visibility"] == "public" and before["maps:trash"]
        cookies = dict(alice.client.cookies)
        csrf = alice.csrf

        # ---- 1. read-only: every write refused (503), visitors keep reading ------------
        assert "read-only mode ON" in waymark(env, "maintenance", "on", "--message",
                                              "Moving to a new database").stdout
        m, layer = info["maps"][0], before[info["maps"][0]]["map"]["layers"][0]["id"]
        deadline = time.monotonic() + 60  # each process re-reads the switch within seconds
        while True:
            r = alice.post(f"/api/v1/maps/{m}/layers/{layer}/features",
                           json={"geometry": {"type": "Point", "coordinates": [3, 3]}})
            if r.status_code == 503 or time.monotonic() > deadline:
                break
            assert r.status_code == 201, r.text  # before the switch reached this process:
            alice.delete(f"/api/v1/maps/{m}/layers/{layer}/features/{r.json()['id']}")
            time.sleep(0.5)
        assert r.status_code == 503 and r.json()["error"]["code"] == "read_only", r.text
        before = api_state(alice.get, maps, job=info["job"])  # reads still served

        # ---- 2. backup: once Litestream has everything, the replica restores to exactly
        #      the read-only database
        deadline = time.monotonic() + 120
        while True:
            status = json.loads(waymark(env, "backup", "status", "--json").stdout)
            if (status["replica_txid"] and status["lag_seconds"] == 0) or \
                    time.monotonic() > deadline:
                break
            time.sleep(1)
        assert status["replica_txid"] and status["lag_seconds"] == 0, status
        pre_move = tmp_path / "pre-move.db"
        restored = waymark(env, "restore", "--output", str(pre_move)).stdout
        assert "integrity_check: ok" in restored
        waymark(env, "db", "verify", "--from", sqlite_url, "--to", f"sqlite:///{pre_move}")

        # ---- 3. copy, 4. verify (the app still serves reads) ----------------------------
        pg_url = postgres_server.create_database("moved")
        objects = files_in(data_dir / "objects")
        copied = waymark(env, "db", "copy", "--from", sqlite_url, "--to", pg_url).stdout
        assert "OK: every table has the same rows and checksum on both sides" in copied
        tables = table_lines(copied)
        assert tables["features"][0] > BIG and all(ok == "ok" for *_, ok in tables.values())
        verified = waymark(env, "db", "verify", "--from", sqlite_url, "--to", pg_url).stdout
        assert "OK: every table" in verified
        assert files_in(data_dir / "objects") == objects  # object storage untouched
        assert alice.get(f"/api/v1/maps/{m}").status_code == 200
    finally:
        stop_serve(served)  # the old app goes; the new one starts on PostgreSQL

    # ---- 5. switch the URL, 6. start, 7. check ------------------------------------------
    env["WAYMARK_DATABASE_URL"] = pg_url
    env["WAYMARK_MASTER_KEY_FILE"] = str(data_dir / "master.key")  # the key the objects have
    assert waymark(env, "check").stdout.rstrip().endswith("OK")
    served = start_serve(env, tmp_path / "postgres.log")
    try:
        wait_ready(served)
        assert "Litestream is not used" in served.tail()
        alice = ApiClient(httpx.Client(base_url=served.base, timeout=60, cookies=cookies))
        alice.csrf = csrf
        after = api_state(alice.get, maps, job=info["job"])
        assert diff(before, after) == []
        # the switch was copied with the data: writes stay refused until it goes off
        assert alice.post(f"/api/v1/maps/{m}/layers/{layer}/features", json={
            "geometry": {"type": "Point", "coordinates": [1, 1]}}).status_code == 503
        assert "read-only mode OFF" in waymark(env, "maintenance", "off").stdout
        deadline = time.monotonic() + 60
        while alice.post(f"/api/v1/maps/{m}/layers/{layer}/features", json={
                "geometry": {"type": "Point", "coordinates": [1, 1]}}).status_code == 503:
            assert time.monotonic() < deadline, "writes still refused after maintenance off"
            time.sleep(0.5)
        # the session still writes (cookie + CSRF); the API token still reads and writes
        robot = ApiClient(httpx.Client(base_url=served.base, timeout=60))
        robot.token = info["token"]
        assert robot.get("/api/v1/auth/me").json()["email"] == "alice@example.com"
        r = robot.post(f"/api/v1/maps/{m}/layers/{layer}/features",
                       json={"geometry": {"type": "Point", "coordinates": [2, 2]}})
        assert r.status_code == 201, r.text
        assert alice.get(f"/api/v1/maps/{m}/layers/{layer}").json()["feature_count"] == \
            before[m][layer]["layer"]["feature_count"] + 2  # the one after "off", the token's
    finally:
        stop_serve(served)
