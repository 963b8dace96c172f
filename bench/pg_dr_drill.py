"""PostgreSQL disaster recovery (issue 18): RPO and RTO of the drill, and RTO of a 1 GB
database, written to bench/RESULTS.md.

    .venv/bin/python bench/pg_dr_drill.py [--runs 1] [--gb 1.0]

1. The drill: each run is the integration test
   `tests/integration/test_pg_dr.py::test_lose_the_data_directory_restore_everything` (real
   PostgreSQL, real pgBackRest archiving to moto_server S3 behind HAProxy TLS, `waymark
   serve` on top), which writes its measurements to $WAYMARK_DR_RESULTS: writes lost after
   the archive caught up (must be 0), RPO of a loss in the middle of a write stream, RTO
   (kill -9 of the postmaster until the app reads again after `waymark restore`).
2. 1 GB: a PostgreSQL whose WAL pgBackRest archives to a directory, a Waymark database
   grown to --gb GB (a million-odd features with properties) after `waymark backup pg-setup`,
   a full backup (`waymark backup pg-backup --type full`, timed), 50,000 more features
   written after it (WAL to replay), then
   kill -9 of the postmaster and its data directory deleted; RTO = `waymark restore`
   (pgBackRest restore, WAL replay, amcheck of every index and table, clean stop) plus
   the start of PostgreSQL, until a query answers. App start-up is in the drill's RTO.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from dr_drill import run_once

sys.path.insert(0, str(c.ROOT))
TEST = "tests/integration/test_pg_dr.py::test_lose_the_data_directory_restore_everything"
COLUMNS = [("acknowledged_writes", "writes"), ("lost_writes", "lost"),
           ("archive_lag_seconds", "archive lag s"), ("rto_seconds", "RTO s"),
           ("db_restore_seconds", "of which restore s"), ("host_loss_writes", "mid-stream writes"),
           ("host_loss_lost_writes", "lost"), ("rpo_host_loss_seconds", "RPO s (mid-stream)"),
           ("first_boot_seconds", "first boot s")]
FILL = ("INSERT INTO features (uuid, layer_id, geometry, properties, minx, miny, maxx, maxy, "
        "version, created_version, updated_at) SELECT gen_random_uuid()::text, {layer}, "
        "'{{\"type\":\"Point\",\"coordinates\":[' || (i % 360 - 180) || ',' || (i % 170 - 85) "
        "|| ']}}', '{{\"name\":\"feature ' || i || '\",\"note\":\"' || repeat(md5(i::text), 12) "
        "|| '\"}}', i % 360 - 180, i % 170 - 85, i % 360 - 180, i % 170 - 85, 1, 1, now() "
        "FROM generate_series({start}, {end}) i")


def one_gigabyte(gb: float) -> dict:
    from tests.integration.pg_backup_support import start_archived_postgres
    from tests.integration.test_dr import waymark

    data_dir = Path(tempfile.mkdtemp(prefix="waymark-bench-pgdr-"))
    pg = start_archived_postgres({"WAYMARK_DATA_DIR": str(data_dir)}, archive_timeout=60)
    try:
        pg.query("INSERT INTO users (email, display_name, password_hash, is_admin, created_at, "
                 "password_changed_at) VALUES ('bench@example.com', 'B', 'x', false, now(), now())")
        pg.query("INSERT INTO maps (public_id, owner_id, title, description, visibility, basemap, "
                 "version, created_at, updated_at) SELECT 'benchmap', id, 'Bench', '', 'private', "
                 "'default', 1, now(), now() FROM users")
        pg.query("INSERT INTO layers (public_id, map_id, name, style, position, visible, staging, "
                 "version, feature_count, created_at, updated_at) SELECT 'benchlayer', id, 'L', "
                 "'{}', 0, true, false, 1, 0, now(), now() FROM maps")
        layer = pg.query("SELECT id FROM layers")[0][0]
        waymark(pg.env, "backup", "pg-setup", timeout=7200)  # archiving on from the start
        started, n, step = time.monotonic(), 0, 100_000
        while pg.query("SELECT pg_database_size('waymark')")[0][0] < gb * 1024**3:
            pg.query(FILL.format(layer=layer, start=n + 1, end=n + step))
            n += step
        fill_s = time.monotonic() - started
        size = pg.query("SELECT pg_database_size('waymark')")[0][0]
        started = time.monotonic()
        full = waymark(pg.env, "backup", "pg-backup", "--type", "full", timeout=7200).stdout
        backup_s = time.monotonic() - started
        pg.query(FILL.format(layer=layer, start=n + 1, end=n + 50_000))  # WAL to replay
        pg.query("CHECKPOINT")
        pg.query("SELECT pg_switch_wal()")
        status = json.loads(waymark(pg.env, "backup", "status", "--json").stdout)
        deadline = time.monotonic() + 600
        while status["lag_seconds"] != 0 and time.monotonic() < deadline:
            time.sleep(1)
            status = json.loads(waymark(pg.env, "backup", "status", "--json").stdout)
        t_loss = time.monotonic()
        pg.kill()
        shutil.rmtree(pg.server.data_dir)
        restored = waymark(pg.env, "restore", timeout=7200).stdout
        restore_s = time.monotonic() - t_loss
        pg.start()
        rows = pg.query("SELECT count(*) FROM features")[0][0]
        rto = time.monotonic() - t_loss
        assert rows == n + 50_000, (rows, n)
        return {"db_bytes": size, "features": rows, "fill_s": round(fill_s, 1),
                "full_backup_s": round(backup_s, 1),
                "repository_bytes": status["last_backup"]["repository_size"],
                "restore_s": round(restore_s, 1), "rto_s": round(rto, 1),
                "integrity": restored.split("integrity_check: ", 1)[1].strip(),
                "full_backup": full.strip()}
    finally:
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    notes = c.machine_notes()
    with tempfile.TemporaryDirectory(prefix="waymark-bench-pgdr-") as tmp:
        drills = [run_once(Path(tmp), i + 1, TEST, timeout=1800) for i in range(args.runs)]
    big = one_gigabyte(args.gb)
    headers = ["run", *(label for _, label in COLUMNS)]
    rows = [[i + 1, *(r[key] for key, _ in COLUMNS)] for i, r in enumerate(drills)]
    c.print_table(headers, rows)
    big_headers = ["database", "features", "full backup s", "repository (gzip)",
                   "RTO s", "of which `waymark restore` s", "integrity check"]
    big_row = [[f"{big['db_bytes'] / 1024**3:.2f} GiB", f"{big['features']:,}",
                big["full_backup_s"], f"{big['repository_bytes'] / 1024**2:.0f} MiB",
                big["rto_s"], big["restore_s"], big["integrity"]]]
    c.print_table(big_headers, big_row)
    if args.no_results:
        return
    body = (
        "## Issue 18. PostgreSQL disaster recovery: RPO and RTO (pgBackRest)\n\n"
        f"Command: `.venv/bin/python bench/pg_dr_drill.py --runs {args.runs} --gb {args.gb}`  \n"
        f"Drill: `{TEST}` (PostgreSQL 15, pgBackRest {pgbackrest_version()} archiving to "
        "moto_server S3 behind HAProxy TLS on 127.0.0.1, archive_timeout 1 s, `waymark serve` "
        "on top). Mid-stream: kill -9 of the postmaster and its data directory deleted during "
        "3 s of back-to-back API writes, `waymark restore`, start: RPO = kill time minus the "
        "acknowledgement of the newest write restored. Then 5 s of writes, the archive catches "
        "up, the same loss again: writes lost (must be 0); RTO = kill until the app reads "
        "again.  \n"
        f"{c.notes_line(notes)}. The machine is shared with other helpers' test suites.\n\n"
        + c.md_table(headers, rows) + "\n\n"
        "1 GB database (`one_gigabyte` in the script: features with ~450-byte properties, "
        "archive to a local directory, 50,000 features written after the full backup so "
        "recovery replays WAL; kill -9 of the postmaster, data directory deleted; RTO = "
        "`waymark restore` (pgBackRest restore, WAL replay and promotion in a private "
        "instance, amcheck of every B-tree index and table, clean stop) + PostgreSQL start "
        "until a query answers; the app's own start-up is in the drill's RTO above):\n\n"
        + c.md_table(big_headers, big_row) + "\n\n"
        "After the archive caught up no acknowledged write was lost. A loss mid-stream loses the "
        "writes of the last archive_timeout or so (the segment being filled); the restored "
        "database is always a consistent prefix. PostgreSQL 15 skips archive_timeout after a "
        "restart until its next checkpoint; the worker's backup_lag job pushes the segment "
        "when the lag passes twice archive_timeout (docs/operations/backup.md).\n")
    c.update_results("pg_dr_drill", body)
    print("updated", c.RESULTS)


def pgbackrest_version() -> str:
    try:
        return subprocess.run(["pgbackrest", "version"], capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip().split()[-1]
    except (OSError, IndexError):
        return "?"


if __name__ == "__main__":
    main()
