"""`waymark db copy` between SQLite and a real PostgreSQL server, both directions.

The forward copy is compared through the API (every map, layer, feature, version, history
entry and ETag) and the copy back to SQLite byte for byte with the original; then the
refusals (non-empty target, other schema revision), the messages on failure, the batching,
and a source written to during the copy.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ApiClient, _client_factory, make_settings
from tests.integration.move_support import api_state, diff, populate, table_lines
from waymark.app import create_app
from waymark.db.copy import CopyError, copy_database
from waymark.db.migrate import upgrade

pytestmark = [pytest.mark.postgres]


def waymark(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    proc = subprocess.run([sys.executable, "-m", "waymark.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    if check:
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@contextmanager
def serving(settings) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """The app on these settings; yields make() -> a new ApiClient."""
    app = create_app(settings)
    factory = _client_factory(app)
    try:
        yield next(factory)
    finally:
        next(factory, None)
        app.state.services.db.dispose()


def raw_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table as SQLite stores it (no type conversion)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()  # noqa: S608 - names from sqlite_master
                for t in tables}
    finally:
        conn.close()


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


@pytest.fixture
def filled(tmp_path: Path, sqlite_url: str) -> dict[str, Any]:
    """A SQLite database filled through the API, with the API's view of it and a session."""
    settings = make_settings(tmp_path, sqlite_url, session_store="file", import_job_bytes=2000)
    with serving(settings) as make:
        alice: ApiClient = make()
        bob: ApiClient = make()
        alice.signup("alice@example.com", name="Alice")
        bob.signup("bob@example.com", name="Bob")
        info = populate(alice, bob, import_bytes=4000)
        state = api_state(alice.get, info["maps"], job=info["job"])
        return {**info, "url": sqlite_url, "state": state, "csrf": alice.csrf,
                "cookies": dict(alice.client.cookies)}


def test_sqlite_to_postgresql_and_back(tmp_path: Path, filled: dict[str, Any],
                                       postgres_server) -> None:  # type: ignore[no-untyped-def]
    pg = postgres_server.create_database("copy_forward")
    source = _sqlite_path(filled["url"])
    with sqlite3.connect(source) as conn:  # a worker's claim of a periodic run: not data
        conn.execute("INSERT INTO periodic_runs (name, scheduled_for, claimed_by, claimed_at) "
                     "VALUES ('retention', '2030-01-01 01:17:00', 'w1', '2030-01-01 01:17:01')")
    out = waymark("db", "copy", "--from", filled["url"], "--to", pg).stdout
    assert "copying rows" in out  # the progress bar
    tables = table_lines(out)
    assert "periodic_runs" not in tables, out
    assert set(tables) >= {"users", "maps", "members", "layers", "features", "changes",
                           "snapshots", "uploads", "jobs", "api_tokens"}, out
    assert all(ok == "ok" and src == dst for src, dst, ok in tables.values()), out
    assert tables["users"][0] == 2 and tables["features"][0] > 30 and tables["jobs"][0] == 1
    assert "OK: every table has the same rows and checksum on both sides" in out

    back = tmp_path / "back.db"
    out = waymark("db", "copy", "--from", pg, "--to", f"sqlite:///{back}").stdout
    assert all(ok == "ok" for *_, ok in table_lines(out).values()), out
    original, copied = raw_rows(source), raw_rows(back)
    assert original.pop("periodic_runs") and copied.pop("periodic_runs") == []
    assert copied == original  # byte for byte

    # the app on PostgreSQL shows exactly what it showed on SQLite, to the same session
    with serving(make_settings(tmp_path, pg, session_store="file")) as make:
        alice: ApiClient = make()
        alice.client.cookies.update(filled["cookies"])
        alice.csrf = filled["csrf"]
        after = api_state(alice.get, filled["maps"], job=filled["job"])
        assert diff(filled["state"], after) == []
        # identities continue after the copied ids: new rows do not collide
        new = alice.create_map("After the move")
        layer = new["layers"][0]["id"]
        r = alice.post(f"/api/v1/maps/{new['id']}/layers/{layer}/features",
                       json={"geometry": {"type": "Point", "coordinates": [0, 0]}})
        assert r.status_code == 201, r.text
        token_client: ApiClient = make()
        token_client.token = filled["token"]
        assert token_client.get("/api/v1/maps").status_code == 200
        assert alice.post("/api/v1/tokens", json={"name": "new"}).status_code == 201


def test_refuses_a_non_empty_target_without_force(filled: dict[str, Any], postgres_server) -> None:  # type: ignore[no-untyped-def]
    pg = postgres_server.create_database("copy_twice")
    waymark("db", "copy", "--from", filled["url"], "--to", pg)
    with sqlite3.connect(_sqlite_path(filled["url"])) as conn:
        conn.execute("UPDATE maps SET title = 'changed at the source'")
    refused = waymark("db", "copy", "--from", filled["url"], "--to", pg, check=False)
    assert refused.returncode == 1
    assert "is not empty (rows in users" in refused.stderr and "--force" in refused.stderr
    engine = create_engine(pg)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM maps WHERE title = 'changed at the source'")) == 0
    out = waymark("db", "copy", "--from", filled["url"], "--to", pg, "--force").stdout
    assert all(ok == "ok" for *_, ok in table_lines(out).values()), out
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM maps WHERE title = 'changed at the source'")) == 3
    engine.dispose()


def test_refuses_a_source_or_target_at_another_schema_revision(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "old.db"
    upgrade(f"sqlite:///{old}", "0002")
    pg = postgres_server.create_database("copy_old_source")
    refused = waymark("db", "copy", "--from", f"sqlite:///{old}", "--to", pg, check=False)
    assert refused.returncode == 1
    assert "is at schema revision 0002, this Waymark expects" in refused.stderr
    assert "waymark migrate" in refused.stderr
    engine = create_engine(pg)
    with engine.connect() as conn:  # nothing was created in the target
        assert conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")) == 0
    engine.dispose()

    current = tmp_path / "current.db"
    upgrade(f"sqlite:///{current}")
    old_target = postgres_server.create_database("copy_old_target")
    upgrade(old_target, "0002")
    refused = waymark("db", "copy", "--from", f"sqlite:///{current}", "--to", old_target,
                      check=False)
    assert refused.returncode == 1 and "at schema revision 0002" in refused.stderr
    assert "use an empty database" in refused.stderr

    missing = waymark("db", "copy", "--from", f"sqlite:///{tmp_path / 'nope.db'}", "--to",
                      old_target, check=False)
    assert missing.returncode == 1 and "no SQLite database at" in missing.stderr


def test_verify_names_the_table_that_differs(filled: dict[str, Any], postgres_server) -> None:  # type: ignore[no-untyped-def]
    pg = postgres_server.create_database("copy_verify")
    waymark("db", "copy", "--from", filled["url"], "--to", pg)
    same = waymark("db", "verify", "--from", filled["url"], "--to", pg)
    assert "OK: every table" in same.stdout
    engine = create_engine(pg)
    with engine.begin() as conn:  # one property of one feature, same row count
        conn.execute(text("UPDATE features SET properties = '{\"n\": 99}' "
                          "WHERE id = (SELECT min(id) FROM features)"))
    engine.dispose()
    differs = waymark("db", "verify", "--from", filled["url"], "--to", pg, check=False)
    assert differs.returncode == 1
    tables = table_lines(differs.stdout)
    assert tables["features"][2] == "MISMATCH" and tables["features"][0] == tables["features"][1]
    assert [t for t, (*_, ok) in tables.items() if ok != "ok"] == ["features"]
    assert "FAIL: source and target differ in features" in differs.stderr


def test_a_row_the_target_refuses_is_named(filled: dict[str, Any], postgres_server) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(_sqlite_path(filled["url"])) as conn:  # SQLite ignores VARCHAR(200)
        conn.execute("UPDATE maps SET title = ? WHERE public_id = ?", ("x" * 300, filled["maps"][0]))
    pg = postgres_server.create_database("copy_refused")
    refused = waymark("db", "copy", "--from", filled["url"], "--to", pg, check=False)
    assert refused.returncode == 1
    assert re.search(r"table maps: the target refused rows \d+-\d+: value too long", refused.stderr), \
        refused.stderr


def test_rows_stream_in_batches_and_a_changing_source_is_caught(
        filled: dict[str, Any], postgres_server) -> None:  # type: ignore[no-untyped-def]
    """Batches never exceed --batch-rows; a write to the source during the copy (the app
    was not stopped) makes the verification fail, naming the table."""
    pg = postgres_server.create_database("copy_batches")
    batches: list[tuple[str, int]] = []
    totals: list[int] = []
    report = copy_database(filled["url"], pg, batch_rows=7, on_total=totals.append,
                           progress=lambda table, rows: batches.append((table, rows)))
    assert not report.mismatches and report.rows == totals[0] == sum(n for _, n in batches)
    assert max(n for _, n in batches) == 7
    assert sum(n for t, n in batches if t == "features") > 7 * 4

    def write_to_source(table: str, _rows: int) -> None:
        if table == "features" and not wrote:
            with sqlite3.connect(_sqlite_path(filled["url"])) as conn:
                conn.execute("UPDATE layers SET name = 'renamed during the copy'")
            wrote.append(table)

    wrote: list[str] = []
    target = postgres_server.create_database("copy_racing")
    report = copy_database(filled["url"], target, progress=write_to_source)
    assert wrote and [c.source.table for c in report.mismatches] == ["layers"]
    with pytest.raises(CopyError, match="same database"):
        copy_database(filled["url"], filled["url"])
