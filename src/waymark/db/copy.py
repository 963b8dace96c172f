"""`waymark db copy`: a Waymark database from SQLite to PostgreSQL or back.

The target's schema is made by the Alembic migrations, at the source's revision, never by
guessing types from the source. Rows are streamed table by table in dependency order, in
batches (a server-side cursor on PostgreSQL), from one read transaction on the source, so
memory stays bounded and the copy is one consistent snapshot. Then the identity sequences
are moved past the copied ids, and both databases are read again and compared table by
table (row count and content checksum, ``digest.py``): a source written to during the copy
shows up as a mismatch. Object storage is not touched: objects are addressed by content
and the copied rows point at the same keys.

The source must not change during the copy: stop the app (docs/operations/scaling.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, Table, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from waymark.db.digest import BATCH_ROWS, TableDigest, digest_table, stream_rows

# Not data: the schema's revision (set by the migrations on the target) and the claims of
# periodic task runs, which workers write every minute, read-only mode or not (a claim only
# matters within its minute; the new database starts with none).
IGNORED_TABLES = frozenset({"alembic_version", "periodic_runs"})
Progress = Callable[[str, int], None]  # (table, rows just copied)


class CopyError(RuntimeError):
    """The copy was refused or failed; the message names the problem and the fix."""


@dataclass
class Comparison:
    source: TableDigest
    target: TableDigest

    @property
    def ok(self) -> bool:
        return self.source.matches(self.target)


@dataclass
class CopyReport:
    revision: str
    rows: int = 0
    seconds: float = 0.0
    tables: list[Comparison] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)  # source tables the schema lacks

    @property
    def mismatches(self) -> list[Comparison]:
        return [c for c in self.tables if not c.ok]


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _engine(url: str, *, must_exist: bool) -> Engine:
    from waymark.db.engine import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise CopyError(f"{describe(url)}: only sqlite:/// and postgresql+psycopg:// URLs")
    if must_exist and parsed.get_backend_name() == "sqlite" and not (
            parsed.database and Path(parsed.database).is_file()):
        raise CopyError(f"no SQLite database at {parsed.database!r}")
    return make_engine(url)


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _tables(conn: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(conn)
    for name in IGNORED_TABLES & set(metadata.tables):
        metadata.remove(metadata.tables[name])
    return metadata


def _check_source(conn: Connection, url: str) -> str:
    from waymark.db.migrate import head_revision

    revision, head = _revision(conn), head_revision()
    if revision != head:
        raise CopyError(
            f"the source {describe(url)} is at schema revision {revision or 'none'}, this "
            f"Waymark expects {head}: run `waymark migrate` on the source first (with the app "
            "stopped), or copy with the Waymark version that matches it")
    return revision


def _prepare_target(engine: Engine, url: str, revision: str, force: bool) -> None:
    """Migrate an empty target to ``revision``; refuse one at another revision, and one
    holding rows unless ``force`` (then empty it)."""
    from waymark.db.migrate import upgrade

    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        current = _revision(conn) if names else None
    if not names:
        upgrade(url, revision)
    elif current != revision:
        raise CopyError(
            f"the target {describe(url)} already has tables, at schema revision "
            f"{current or 'none'} (the source is at {revision}): use an empty database")
    with engine.connect() as conn:
        tables = _tables(conn).sorted_tables
        filled = [t.name for t in tables if conn.execute(select(t).limit(1)).first()]
    if filled and not force:
        raise CopyError(
            f"the target {describe(url)} is not empty (rows in {', '.join(filled)}): refusing "
            "to write into it; pass --force to replace its contents")
    if filled:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names_sql = ", ".join(conn.dialect.identifier_preparer.format_table(t)
                                      for t in tables)
                conn.execute(text(f"TRUNCATE TABLE {names_sql} RESTART IDENTITY"))
            else:
                for table in reversed(tables):
                    conn.execute(table.delete())


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    """Times as zone-aware UTC: SQLite returns naive UTC, and a naive time sent to
    PostgreSQL would be read in the session's time zone."""
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return row


def _copy_table(src: Connection, dst_engine: Engine, source: Table, target: Table,
                batch_rows: int, progress: Progress | None) -> int:
    names = sorted(c.name for c in target.columns)
    if sorted(c.name for c in source.columns) != names:
        raise CopyError(f"table {target.name}: the columns differ between source and target")
    copied = 0
    for batch in stream_rows(src, source, batch_rows):
        rows = [_utc(dict(zip(names, row, strict=False))) for row in batch]
        try:
            with dst_engine.begin() as dst:
                dst.execute(target.insert(), rows)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise CopyError(f"table {target.name}: the target refused rows "
                            f"{copied + 1}-{copied + len(rows)}: {reason}") from None
        copied += len(rows)
        if progress:
            progress(target.name, len(rows))
    return copied


def _reset_sequences(engine: Engine, tables: list[Table]) -> None:
    """Next generated id = highest copied id + 1 (PostgreSQL sequences; SQLite's
    sqlite_sequence for AUTOINCREMENT tables; plain INTEGER PRIMARY KEYs need nothing)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            prep = conn.dialect.identifier_preparer
            for table in tables:
                for column in table.primary_key.columns:
                    seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": prep.format_table(table), "c": column.name})
                    if seq:
                        top = conn.scalar(select(func.max(column))) or 0
                        conn.execute(text("SELECT setval(:s, :v, false)"), {"s": seq, "v": top + 1})
        elif "sqlite_sequence" in inspect(conn).get_table_names():
            for table in tables:
                pk = list(table.primary_key.columns)
                if len(pk) == 1:
                    top = conn.scalar(select(func.max(pk[0])))
                    conn.execute(text("DELETE FROM sqlite_sequence WHERE name = :n"),
                                 {"n": table.name})
                    if top is not None:
                        conn.execute(text("INSERT INTO sqlite_sequence (name, seq) "
                                          "VALUES (:n, :v)"), {"n": table.name, "v": top})


def _begin_snapshot(conn: Connection) -> None:
    """One consistent read of the whole source: a read-only REPEATABLE READ transaction
    on PostgreSQL; on SQLite the engine's deferred BEGIN holds a snapshot after the first
    read."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def count_rows(conn: Connection, tables: list[Table]) -> dict[str, int]:
    return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables}


def copy_database(source_url: str, target_url: str, *, force: bool = False,
                  batch_rows: int = BATCH_ROWS, progress: Progress | None = None,
                  on_total: Callable[[int], None] | None = None) -> CopyReport:
    """Copy every table, reset the sequences, then compare both sides (``report.tables``)."""
    if describe(source_url) == describe(target_url):
        raise CopyError("--from and --to are the same database")
    started = time.monotonic()
    src_engine = _engine(source_url, must_exist=True)
    dst_engine = _engine(target_url, must_exist=False)
    try:
        with src_engine.connect() as src:
            _begin_snapshot(src)
            revision = _check_source(src, source_url)
            _prepare_target(dst_engine, target_url, revision, force)
            with dst_engine.connect() as dst:
                targets = _tables(dst).sorted_tables
            sources = _tables(src)
            missing = [t.name for t in targets if t.name not in sources.tables]
            if missing:
                raise CopyError(f"the source lacks tables {', '.join(missing)}")
            report = CopyReport(revision, not_copied=sorted(
                set(sources.tables) - {t.name for t in targets}))
            totals = count_rows(src, [sources.tables[t.name] for t in targets])
            if on_total:
                on_total(sum(totals.values()))
            for target in targets:
                report.rows += _copy_table(src, dst_engine, sources.tables[target.name],
                                           target, batch_rows, progress)
        _reset_sequences(dst_engine, targets)
        report.tables = compare(src_engine, dst_engine, [t.name for t in targets])
    finally:
        src_engine.dispose()
        dst_engine.dispose()
    report.seconds = time.monotonic() - started
    return report


def compare(src_engine: Engine, dst_engine: Engine, names: list[str]) -> list[Comparison]:
    """Row counts and checksums of tables ``names`` on both sides ("absent" where a side
    lacks one), each side read afresh in one snapshot."""
    with src_engine.connect() as src, dst_engine.connect() as dst:
        _begin_snapshot(src)
        _begin_snapshot(dst)
        sources, targets = _tables(src), _tables(dst)
        out = []
        for name in sorted(names):
            s = digest_table(src, sources.tables[name]) if name in sources.tables \
                else TableDigest(name, 0, "absent")
            t = digest_table(dst, targets.tables[name]) if name in targets.tables \
                else TableDigest(name, 0, "absent")
            out.append(Comparison(s, t))
        return out


def verify_databases(source_url: str, target_url: str) -> list[Comparison]:
    """`waymark db verify`: compare two databases without copying anything: Waymark's
    tables (other tables, e.g. Litestream's bookkeeping in a SQLite file, are not ours)."""
    from waymark.db.models import Base

    src_engine = _engine(source_url, must_exist=True)
    dst_engine = _engine(target_url, must_exist=True)
    try:
        return compare(src_engine, dst_engine, list(Base.metadata.tables))
    finally:
        src_engine.dispose()
        dst_engine.dispose()
