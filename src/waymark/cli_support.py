"""What the `waymark` commands share: the settings, the database, and the checks made
before a process starts or writes (one place, so every command applies them alike)."""

from __future__ import annotations

import click

from waymark.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def refuse_node_key(settings: Settings) -> None:
    """Nodes sharing a database must share the master key too (Settings.node_key_problem)."""
    problem = settings.node_key_problem()
    if problem:
        raise click.ClickException(f"refusing to start: {problem}")


def database(settings: Settings):  # type: ignore[no-untyped-def]
    from waymark.db.engine import Database

    return Database.for_settings(settings)


def writable_database(settings: Settings):  # type: ignore[no-untyped-def]
    """The database for a command that changes data: refused while the service is read-only,
    as HTTP and websocket writes are (a database copy or a recovery in progress would miss
    the change)."""
    from waymark.maintenance.mode import read_state

    db = database(settings)
    state = read_state(db)
    if state is not None:
        raise click.ClickException(f"the service is read-only ({state.message}); run this "
                                   "again after `waymark maintenance off`")
    return db
