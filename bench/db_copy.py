"""`waymark db copy` SQLite -> PostgreSQL (and back): time and peak memory by database size.

    .venv/bin/python bench/db_copy.py [--features 200000,800000]

For each size: a fresh SQLite database (`waymark migrate`, then features with ~300-byte
properties inserted in SQL), a fresh PostgreSQL database on a throwaway server on loopback,
then `waymark db copy --from SQLITE --to POSTGRES` as a subprocess, its peak RSS sampled
every 20 ms (psutil); the time includes the verification (both sides read again). Then the
largest copy back to a new SQLite file. Memory must not grow with the database: rows are
streamed in batches of 1,000.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from import_100k import poll_rss

sys.path.insert(0, str(c.ROOT))
FILL = """
WITH RECURSIVE n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n WHERE i < :end)
INSERT INTO features (uuid, layer_id, geometry, properties, minx, miny, maxx, maxy, version,
                      created_version, updated_at)
SELECT printf('%08x-0000-4000-8000-%012x', i, i), 1,
       '{"type":"Point","coordinates":[' || (i % 360 - 180) || ',' || (i % 170 - 85) || ']}',
       '{"name":"feature ' || i || '","note":"' || hex(randomblob(128)) || '"}',
       i % 360 - 180, i % 170 - 85, i % 360 - 180, i % 170 - 85, 1, 1,
       '2026-12-07 10:00:00.000000'
FROM n"""


def sqlite_database(path: Path, features: int) -> str:
    url = f"sqlite:///{path}"
    c.run_cli(["migrate"], {**c.waymark_env(path.parent), "WAYMARK_DATABASE_URL": url})
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO users (id, email, display_name, password_hash, is_admin, "
                     "created_at, password_changed_at) VALUES (1, 'b@example.org', 'B', 'x', 0, "
                     "'2026-12-07 10:00:00.000000', '2026-12-07 10:00:00.000000')")
        conn.execute("INSERT INTO maps (id, public_id, owner_id, title, description, visibility, "
                     "basemap, version, created_at, updated_at) VALUES (1, 'benchmap', 1, 'B', '', "
                     "'private', 'default', 1, '2026-12-07 10:00:00', '2026-12-07 10:00:00')")
        conn.execute("INSERT INTO layers (id, public_id, map_id, name, style, position, visible, "
                     "staging, version, feature_count, created_at, updated_at) VALUES (1, 'l', 1, "
                     "'L', '{}', 0, 1, 0, 1, 0, '2026-12-07 10:00:00', '2026-12-07 10:00:00')")
    for start in range(1, features + 1, 100_000):
        with conn:
            conn.execute(FILL, {"start": start, "end": min(start + 99_999, features)})
    conn.close()
    return url


def copy(source: str, target: str) -> dict:
    env = c.waymark_env(Path(tempfile.gettempdir()))
    started = time.monotonic()
    proc = subprocess.Popen([c.WAYMARK, "db", "copy", "--from", source, "--to", target],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), {}
    watcher = threading.Thread(target=poll_rss, args=(proc.pid, stop, peak))
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    watcher.join()
    wall = time.monotonic() - started
    if proc.returncode != 0 or "OK: every table" not in out:
        raise SystemExit(f"db copy failed:\n{out}\n{err}")
    rows = int(re.search(r"copied ([\d,]+) rows", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    copy_s = float(re.search(r"rows at schema revision \S+ in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    return {"rows": rows, "wall_s": round(wall, 1), "copy_and_verify_s": copy_s,
            "peak_rss_mb": round(peak.get("peak", 0) / 2**20)}


def main() -> None:
    from tests.servers import start_postgres_server

    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="200000,800000")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.features.split(",")]
    notes = c.machine_notes()
    rows_out = []
    server = start_postgres_server()
    try:
        with tempfile.TemporaryDirectory(prefix="waymark-bench-copy-") as tmp:
            last = None
            for n in sizes:
                db = Path(tmp) / f"{n}" / "waymark.db"
                db.parent.mkdir()
                source = sqlite_database(db, n)
                target = server.create_database(f"copy_{n}")
                r = copy(source, target)
                rows_out.append(["SQLite -> PostgreSQL", f"{n:,}", f"{db.stat().st_size / 2**20:.0f}",
                                 f"{r['rows']:,}", r["copy_and_verify_s"], r["wall_s"],
                                 r["peak_rss_mb"]])
                last = (target, db.stat().st_size, n)
            target, size, n = last  # type: ignore[misc]
            back = Path(tmp) / "back.db"
            r = copy(target, f"sqlite:///{back}")
            rows_out.append(["PostgreSQL -> SQLite", f"{n:,}", f"{size / 2**20:.0f}",
                             f"{r['rows']:,}", r["copy_and_verify_s"], r["wall_s"],
                             r["peak_rss_mb"]])
    finally:
        server.stop()
    headers = ["direction", "features", "SQLite MB", "rows copied", "copy + verify s",
               "wall s", "peak RSS MB"]
    c.print_table(headers, rows_out)
    if args.no_results:
        return
    body = ("## Issue 18. `waymark db copy`: time and memory by size\n\n"
            f"Command: `.venv/bin/python bench/db_copy.py --features {args.features}`  \n"
            "Per size: a fresh SQLite database (features with ~300-byte properties, inserted "
            "in SQL), a fresh database on a throwaway PostgreSQL 15 on loopback (fsync off), "
            "`waymark db copy --from SQLITE --to POSTGRES` as a subprocess; then the largest "
            "back into a new SQLite file. Time = the command's own report (copy, sequences, "
            "both sides read again and compared); peak RSS of the process sampled every 20 ms.  \n"
            f"{c.notes_line(notes)}. The machine is shared with other helpers' test suites.\n\n"
            + c.md_table(headers, rows_out) + "\n\n"
            "Peak memory stays flat as the database grows (rows stream in batches of 1,000 "
            "through a server-side cursor on PostgreSQL); time grows linearly with the rows.\n")
    c.update_results("db_copy", body)
    print("updated", c.RESULTS)


if __name__ == "__main__":
    main()
