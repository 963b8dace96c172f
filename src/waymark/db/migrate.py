"""Alembic, driven from code so `waymark migrate` needs no alembic.ini on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from waymark.db.engine import make_engine

    make_engine(url).dispose()  # creates the SQLite parent directory if needed
    _new_sqlite_file(url)
    command.upgrade(alembic_config(url), revision)


def _new_sqlite_file(url: str) -> None:
    """A new SQLite database starts with auto_vacuum=INCREMENTAL (it can only be chosen before
    the first table), so the maintenance job can give free pages back without a full VACUUM."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    if path.exists() and path.stat().st_size > 0:
        return
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")  # writes the header: the choice is kept
    finally:
        conn.close()


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
