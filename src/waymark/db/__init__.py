"""Database access: engine, sessions, models and migrations."""

from waymark.db.engine import Database, make_engine
from waymark.db.migrate import current_revision, head_revision, upgrade

__all__ = ["Database", "current_revision", "head_revision", "make_engine", "upgrade"]
