"""`waymark maintenance on | off | status` (read-only mode) and `waymark maintenance run`."""

from __future__ import annotations

import getpass
import json

import click


def _db():  # type: ignore[no-untyped-def]
    from waymark.cli_support import database, settings_or_exit

    return database(settings_or_exit())


@click.group()
def maintenance() -> None:
    """Read-only mode for maintenance windows, and the routine maintenance jobs."""


@maintenance.command("on")
@click.option("--message", default="", help="Shown to people and API clients while it is on.")
@click.option("--retry-after", type=click.IntRange(min=1), default=300, show_default=True,
              help="Seconds clients are told to wait (Retry-After).")
def mode_on(message: str, retry_after: int) -> None:
    """Switch every node to read-only: writes get 503, reads keep working."""
    from waymark.maintenance.mode import CACHE_SECONDS, switch_on

    state = switch_on(_db(), message, retry_after, set_by=f"cli:{getpass.getuser()}")
    click.echo(f"read-only mode ON since {state.since.isoformat(timespec='seconds')}: "
               f"{state.message}")
    click.echo(f"every node refuses writes within {CACHE_SECONDS:g} s")


@maintenance.command("off")
def mode_off() -> None:
    """Accept writes again."""
    from waymark.maintenance.mode import switch_off

    click.echo("read-only mode OFF" if switch_off(_db()) else "read-only mode was not on")


@maintenance.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def mode_status(as_json: bool) -> None:
    """Is the service read-only, since when and why. Exit status 0 either way."""
    from waymark.maintenance.mode import read_state

    state = read_state(_db())
    if as_json:
        click.echo(json.dumps({"read_only": state is not None,
                               "message": state.message if state else None,
                               "since": state.since.isoformat() if state else None,
                               "retry_after": state.retry_after if state else None}))
    elif state is None:
        click.echo("read-only mode: off (writes accepted)")
    else:
        click.echo(f"read-only mode: ON since {state.since.isoformat(timespec='seconds')} "
                   f"(Retry-After {state.retry_after} s): {state.message}")


@maintenance.command("run")
@click.option("--only", multiple=True, metavar="NAME",
              help="Run only this job (repeatable): database, staging_layers, live_history, "
                   "sessions, config_backups, finished_jobs, history.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def run_cmd(only: tuple[str, ...], as_json: bool) -> None:
    """Run the routine maintenance jobs now and report what each did; exit 1 if one failed."""
    from waymark.cli_support import settings_or_exit as _settings
    from waymark.maintenance.jobs import run_jobs
    from waymark.storage.crypto import open_object_store

    settings = _settings()
    try:
        reports = run_jobs(settings, _db(), open_object_store(settings), list(only) or None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
    else:
        for r in reports:
            detail = ", ".join(f"{k}={v}" for k, v in r.detail.items())
            click.echo(f"{r.job:<15} {r.outcome:<8} {r.items:>8} items {r.seconds:>7.2f} s  "
                       f"{detail}")
    if any(r.outcome == "failed" for r in reports):
        raise SystemExit(1)
