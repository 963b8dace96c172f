"""Database access: engine and sessions (db/engine.py), models (db/models.py), migrations
(db/migrate.py). Import the module you need: this package imports nothing itself, so that
`waymark serve`, which loads `waymark.db.commands` with the CLI, stays without SQLAlchemy
(bench/memory.py)."""
