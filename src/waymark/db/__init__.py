"""Database access: engine, sessions and models (db/engine.py, db/models.py); migrations
in db/migrate.py, imported only where they run (it brings Alembic, which the app does not
need to serve)."""

from waymark.db.engine import Database, make_engine

__all__ = ["Database", "current_revision", "head_revision", "make_engine", "upgrade"]
