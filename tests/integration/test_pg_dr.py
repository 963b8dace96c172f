"""Disaster-recovery drills on PostgreSQL, like the SQLite ones (test_dr.py): `waymark serve`
on a real PostgreSQL whose WAL real pgBackRest archives to a real S3 protocol server
(moto_server, behind HAProxy for TLS) on loopback.

1. The PostgreSQL data directory is lost (kill -9 of the postmaster, directory deleted) in
   the middle of a write stream: `waymark restore`, start PostgreSQL; the restored database
   is a consistent prefix of the acknowledged writes, the writes after it are the RPO.
   Then writes, the archive catches up, the directory is lost again: every acknowledged
   write is back. Measures RPO and RTO (printed, and written to
   $WAYMARK_DR_RESULTS if set; bench/pg_dr_drill.py records runs in bench/RESULTS.md).
2. Point in time: a bulk delete at time T, restore to just before T: the data is back, in a
   side copy and then in the live cluster, and archiving continues after the roll-back.

The commands are the ones in docs/operations/restore.md and disaster-recovery.md.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.integration.pg_backup_support import (
    ArchivedPostgres,
    TlsProxy,
    start_archived_postgres,
    start_copy,
    start_tls_proxy,
    stop_copy,
    wait_archived,
)
from tests.integration.test_dr import Api, start_serve, stop_serve, wait_ready, waymark

pytestmark = [pytest.mark.postgres, pytest.mark.s3]
LAYER_FEATURES = ("SELECT f.uuid FROM features f JOIN layers l ON l.id = f.layer_id "
                  "WHERE l.public_id = '{}'")


@pytest.fixture
def tls_s3(moto_server) -> Iterator[TlsProxy]:  # type: ignore[no-untyped-def]
    proxy = start_tls_proxy(int(moto_server.endpoint.rsplit(":", 1)[1]))
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def drill(tmp_path: Path, moto_server, tls_s3: TlsProxy) -> Iterator[ArchivedPostgres]:  # type: ignore[no-untyped-def]
    bucket = moto_server.make_bucket(f"pgdr-{uuid.uuid4().hex[:10]}")
    endpoint = f"https://127.0.0.1:{tls_s3.port}"
    pg = start_archived_postgres(
        {"WAYMARK_BACKUP_URL": f"s3://{bucket}/waymark?endpoint={endpoint}&region=us-east-1",
         "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
         "AWS_CA_BUNDLE": str(tls_s3.ca_file),
         "WAYMARK_DATA_DIR": str(tmp_path / "var"), "WAYMARK_SNAPSHOT_DELAY_MS": "200",
         "WAYMARK_LOG_LEVEL": "warning", "WAYMARK_RATE_LIMITS": "write=off"},
        server_env={"PGBACKREST_REPO1_S3_KEY": "test", "PGBACKREST_REPO1_S3_KEY_SECRET": "test",
                    "PGBACKREST_REPO1_STORAGE_CA_FILE": str(tls_s3.ca_file)})
    try:
        setup = waymark(pg.env, "backup", "pg-setup").stdout
        assert "first full backup" in setup, setup
        yield pg
    finally:
        pg.stop()


def lose_data_directory(pg: ArchivedPostgres) -> float:
    """kill -9 of the postmaster, then its data directory deleted; returns the kill time."""
    pg.kill()
    killed = time.monotonic()
    shutil.rmtree(pg.server.data_dir)
    return killed


def wait_serving(base: str, map_id: str, timeout: float = 300) -> None:
    """Until /readyz is 200 and the map reads again (pooled connections reconnect)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200 and \
                    httpx.get(f"{base}/api/v1/maps/{map_id}", timeout=5).status_code in (200, 404):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the app did not serve again")


def test_lose_the_data_directory_restore_everything(drill: ArchivedPostgres, tmp_path: Path) -> None:
    env, pg = drill.env, drill
    served = start_serve(env, tmp_path / "serve.log")
    try:
        first_boot = wait_ready(served)
        api = Api(served.base)
        api.signup("pgdrill@example.com")
        map_id, layer_id = api.new_map()
        older = [api.add_point(map_id, layer_id, -n) for n in range(1, 21)]
        wait_archived(env)

        # 1. the data directory is lost in the middle of a write stream: what the archive
        # holds is a prefix of the acknowledged writes; the rest is the RPO
        stream: list[tuple[str, float]] = []
        stream_start = time.monotonic()
        while time.monotonic() < stream_start + 3:
            stream.append((api.add_point(map_id, layer_id, 10_000 + len(stream)), time.monotonic()))
        t_kill = lose_data_directory(pg)
        waymark(env, "restore")  # into WAYMARK_POSTGRES_DATA_DIR: it is empty now
        pg.start()
        wait_serving(served.base, map_id)
        survived = {f["id"] for f in api.features(map_id, layer_id)}
        kept = [fid in survived for fid, _ in stream]
        assert kept == sorted(kept, reverse=True), "the archive must hold a prefix of the writes"
        assert all(fid in survived for fid in older), "archived writes must survive"
        newest_kept = max((at for fid, at in stream if fid in survived), default=stream_start)
        host_rpo = t_kill - newest_kept if not all(kept) else 0.0

        # 2. writes, then the loss once the archive has them: every one is back
        acked: list[str] = []
        deadline = time.monotonic() + 5
        n = 0
        while time.monotonic() < deadline:
            acked.append(api.add_point(map_id, layer_id, n))
            n += 1
        last_ack = time.monotonic()
        status = wait_archived(env)  # how long the newest acknowledged write waits for the archive
        archive_lag = time.monotonic() - last_ack
        assert status["last_backup"]["type"] == "full"
        t_loss = lose_data_directory(pg)
        restored = waymark(env, "restore")
        assert "integrity_check: ok (amcheck: " in restored.stdout, restored.stdout
        restore_seconds = float(restored.stdout.split(" in ", 1)[1].split("s;", 1)[0])
        pg.start()
        wait_serving(served.base, map_id)
        rto = time.monotonic() - t_loss
        ids = {f["id"] for f in api.features(map_id, layer_id)}
        lost = [fid for fid in acked if fid not in ids]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost"
        assert ids == set(older) | {fid for fid, _ in stream if fid in survived} | set(acked)
        data = api.http.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data")
        assert data.status_code == 200 and len(data.json()["features"]) == len(ids)
        after = json.loads(waymark(env, "backup", "status", "--json", check=False).stdout)
        assert after["current_wal"].startswith("00000003"), after  # two restores: timeline 3

        results = {"acknowledged_writes": len(acked), "lost_writes": len(lost),
                   "archive_lag_seconds": round(archive_lag, 2),
                   "host_loss_writes": len(stream), "host_loss_lost_writes": kept.count(False),
                   "rpo_host_loss_seconds": round(host_rpo, 2),
                   "rto_seconds": round(rto, 2), "db_restore_seconds": restore_seconds,
                   "first_boot_seconds": round(first_boot, 2),
                   "archive_timeout_seconds": int(env["WAYMARK_PG_ARCHIVE_TIMEOUT_SECONDS"]),
                   "repository": "s3 (moto_server behind HAProxy TLS)"}
        print("\nPostgreSQL DR drill:", json.dumps(results))
        if os.environ.get("WAYMARK_DR_RESULTS"):
            Path(os.environ["WAYMARK_DR_RESULTS"]).write_text(json.dumps(results, indent=2))
    finally:
        stop_serve(served)


def test_point_in_time_restore_before_a_bulk_delete(drill: ArchivedPostgres, tmp_path: Path) -> None:
    env, pg = drill.env, drill
    served = start_serve(env, tmp_path / "serve1.log")
    try:
        wait_ready(served)
        api = Api(served.base)
        api.signup("pgpitr@example.com")
        map_id, layer_id = api.new_map()
        for n in range(40):
            api.add_point(map_id, layer_id, n)
        wait_archived(env)
        time.sleep(1.1)  # a clear second between the last insert and T
        before_delete = datetime.now(UTC)
        time.sleep(1.1)
        feats = api.features(map_id, layer_id)
        r = api.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/batch",
                     {"operations": [{"op": "delete", "id": f["id"], "version": f["version"]}
                                     for f in feats]})
        assert r.status_code == 200, r.text
        assert api.features(map_id, layer_id) == []
        wait_archived(env)

        # the live data directory is refused without --force
        refused = waymark(env, "restore", "--to-time", before_delete.isoformat(), check=False)
        assert refused.returncode != 0
        assert "refusing to overwrite the live data directory" in refused.stderr

        # to just before T, into a new data directory: the 40 features are back
        side = pg.root / "before-delete"
        out = waymark(env, "restore", "--to-time", before_delete.isoformat(), "--output", str(side))
        assert "integrity_check: ok" in out.stdout
        port = start_copy(pg, side)
        try:
            assert len(pg.query(LAYER_FEATURES.format(layer_id), port=port)) == 40
        finally:
            stop_copy(pg, side)

        # roll the live cluster back: stop the app and PostgreSQL, restore --force, start
        stop_serve(served)
        assert pg.pg_ctl("-m", "fast", "-w", "stop").returncode == 0
        out = waymark(env, "restore", "--to-time", before_delete.isoformat(), "--force")
        assert "integrity_check: ok" in out.stdout
        pg.start()
        served = start_serve(env, tmp_path / "serve2.log")
        wait_ready(served)
        api = Api(served.base)
        api.login("pgpitr@example.com")
        assert len(api.features(map_id, layer_id)) == 40
        api.add_point(map_id, layer_id, 1000)
        wait_archived(env)  # archiving continues on the new timeline
        after = pg.root / "after-rollback"
        waymark(env, "restore", "--output", str(after))
        port = start_copy(pg, after)
        try:
            assert len(pg.query(LAYER_FEATURES.format(layer_id), port=port)) == 41
        finally:
            stop_copy(pg, after)
    finally:
        stop_serve(served)
