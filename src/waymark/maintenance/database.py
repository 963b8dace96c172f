"""The `database` maintenance job.

SQLite: `PRAGMA optimize` (refreshes the planner's statistics where they are stale), then,
when more than WAYMARK_VACUUM_FREE_PAGES pages are free (deleted maps, purged history), gives
them back to the filesystem with `PRAGMA incremental_vacuum`. Databases created by Waymark
use auto_vacuum=INCREMENTAL; an older file (auto_vacuum off) is converted by one full VACUUM
the first time it passes the threshold, holding the write lock meanwhile: run
`waymark maintenance run --only database` in a quiet hour to choose when.

PostgreSQL: `ANALYZE`, and a report of tables whose dead tuples pass the threshold and 20 %
of their live rows, with when autovacuum last ran on them (autovacuum does the vacuuming).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import text

from waymark.db.engine import SQLITE_BUSY_TIMEOUT_MS
from waymark.maintenance.jobs import Context, Outcome
from waymark.observability.metrics import DB_FREE_PAGES

AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}
BLOAT_RATIO = 0.2


def run(ctx: Context) -> Outcome:
    if ctx.db.sqlite_path is not None:
        return sqlite_maintenance(ctx.db, ctx.settings.vacuum_free_pages)
    if ctx.db.engine.dialect.name == "postgresql":
        return postgres_maintenance(ctx.db, ctx.settings.vacuum_free_pages)
    return Outcome(detail={"note": "nothing to do for this database"})


def _pragma(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def sqlite_maintenance(db: Any, threshold: int) -> Outcome:
    conn = sqlite3.connect(db.sqlite_path, isolation_level=None,
                           timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        with db.writes_paused():
            conn.execute("PRAGMA optimize").fetchall()
        free, pages = _pragma(conn, "freelist_count"), _pragma(conn, "page_count")
        mode = AUTO_VACUUM.get(_pragma(conn, "auto_vacuum"), "unknown")
        detail: dict[str, Any] = {"optimized": True, "auto_vacuum": mode, "pages": pages,
                                  "free_pages_before": free, "threshold": threshold}
        reclaimed = 0
        if threshold and free > threshold:
            with db.writes_paused():
                if mode != "incremental":  # once: convert, reclaiming everything
                    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                    conn.execute("VACUUM")
                    detail["converted_to_incremental"] = True
                else:
                    conn.executescript("PRAGMA incremental_vacuum")  # sqlite3_exec: every step
            after = _pragma(conn, "freelist_count")
            reclaimed = free - after
            detail["free_pages_after"] = after
        DB_FREE_PAGES.set(free - reclaimed)
        detail["pages_reclaimed"] = reclaimed
        return Outcome(reclaimed, detail)
    finally:
        conn.close()


BLOAT_SQL = text("""
    SELECT relname, n_live_tup, n_dead_tup, last_autovacuum, last_vacuum, last_autoanalyze
    FROM pg_stat_user_tables ORDER BY n_dead_tup DESC
""")


def postgres_maintenance(db: Any, threshold: int) -> Outcome:
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        rows = list(conn.execute(BLOAT_SQL))
    dead_total = sum(int(r.n_dead_tup or 0) for r in rows)
    bloated = [{"table": r.relname, "live": int(r.n_live_tup or 0), "dead": int(r.n_dead_tup or 0),
                "last_autovacuum": r.last_autovacuum.isoformat() if r.last_autovacuum else None,
                "last_vacuum": r.last_vacuum.isoformat() if r.last_vacuum else None}
               for r in rows
               if (r.n_dead_tup or 0) > threshold
               and (r.n_dead_tup or 0) > BLOAT_RATIO * max(int(r.n_live_tup or 0), 1)]
    never = sorted(r.relname for r in rows if r.last_autovacuum is None and r.last_vacuum is None
                   and (r.n_dead_tup or 0) > threshold)
    DB_FREE_PAGES.set(dead_total)
    return Outcome(len(rows), {"analyzed_tables": len(rows), "dead_tuples": dead_total,
                               "bloated": bloated, "never_vacuumed": never,
                               "threshold": threshold})
