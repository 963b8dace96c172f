"""Connections to PostgreSQL: the bounded pool per process, the budget `waymark check`
prints, and PgBouncer in transaction mode (the edit and import API tests also run through
it: `WITH_PGBOUNCER` in tests/api/test_editing.py and test_import_api.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from waymark.db.engine import Database, make_engine
from waymark.db.migrate import upgrade

pytestmark = [pytest.mark.postgres]
QUERY = text("SELECT count(*) FROM pg_class WHERE relname = :name")


def _run_prepared_then_switch_server(engine, bouncer) -> None:  # type: ignore[no-untyped-def]
    """One client runs a query often enough for psycopg to prepare it on the server it got;
    then another client holds that server connection in a transaction, so PgBouncer gives
    the first client's next transaction a different server connection."""
    with engine.connect() as conn:
        for _ in range(10):
            conn.execute(QUERY, {"name": "pg_class"}).scalar_one()
            conn.commit()
        with psycopg.connect(bouncer.conninfo("postgres")) as other:
            other.execute("SELECT 1")  # BEGIN: holds the server connection just released
            conn.execute(QUERY, {"name": "pg_class"}).scalar_one()
            conn.commit()


def test_prepared_statements_are_off_behind_a_transaction_pooler(pgbouncer_server) -> None:  # type: ignore[no-untyped-def]
    url = pgbouncer_server.url("postgres")
    plain = make_engine(url, pool_size=1)
    with pytest.raises(DBAPIError, match="prepared statement .* does not exist"):
        _run_prepared_then_switch_server(plain, pgbouncer_server)
    plain.dispose()
    pooled = make_engine(url, pool_size=1, transaction_pooler=True)
    _run_prepared_then_switch_server(pooled, pgbouncer_server)  # no error
    pooled.dispose()


def test_the_pool_never_opens_more_than_its_size(postgres_server) -> None:  # type: ignore[no-untyped-def]
    url = postgres_server.create_database("pool_bound")
    db = Database(url + "?application_name=waymark-pool-bound", pool_size=2)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
            while not done.is_set():
                seen.append(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                         "application_name = 'waymark-pool-bound'").fetchone()[0])

    def work() -> None:
        with db.read() as s:
            s.execute(text("SELECT pg_sleep(0.2)"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=work) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    watcher.join()
    db.dispose()
    assert max(seen) == 2, seen  # 8 concurrent readers queued on 2 connections


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    return subprocess.run([sys.executable, "-m", "waymark.cli", "check"], env={**base, **env},
                          capture_output=True, text=True, timeout=180, check=False)


def test_check_prints_the_connection_budget_and_refuses_an_impossible_one(
        tmp_path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    url = postgres_server.create_database("budget")
    upgrade(url)
    with psycopg.connect(postgres_server.conninfo("budget")) as conn:
        max_conn = int(conn.execute("SHOW max_connections").fetchone()[0])
        reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0]) + 5
    env = {"WAYMARK_DATA_DIR": str(tmp_path / "var"), "WAYMARK_DATABASE_URL": url,
           "WAYMARK_WORKERS": "3"}
    ok = _check({**env, "WAYMARK_DB_POOL_SIZE": "10"})
    assert ok.returncode == 0, ok.stderr
    usable = max_conn - reserved
    assert (f"database connections: up to 40 per node (4 processes x WAYMARK_DB_POOL_SIZE=10); "
            f"PostgreSQL max_connections={max_conn}, {usable} usable after {reserved} reserved: "
            f"room for {usable // 40} such node(s)") in ok.stdout, ok.stdout
    too_many = max_conn  # 4 processes x max_connections can never fit
    refused = _check({**env, "WAYMARK_DB_POOL_SIZE": str(too_many)})
    assert refused.returncode == 1
    assert f"one node may open {4 * too_many} PostgreSQL connections" in refused.stderr
    assert "PgBouncer" in refused.stderr
    bad = _check({**env, "WAYMARK_DB_POOL_SIZE": "0"})
    assert bad.returncode == 1 and "WAYMARK_DB_POOL_SIZE must be at least 1" in bad.stderr
