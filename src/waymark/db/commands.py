"""CLI group `waymark db`: copy a database between SQLite and PostgreSQL, and verify a copy
(thin: the logic is in ``copy.py`` and ``digest.py``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the copy needs SQLAlchemy and Alembic: imported by the commands that
    # run it, not by every `waymark` command (`serve` stays without them, bench/memory.py)
    from waymark.db.copy import Comparison


@click.group()
def db() -> None:
    """Database moves: copy between SQLite and PostgreSQL, verify."""


def _print_comparison(rows: list[Comparison]) -> None:
    click.echo(f"{'table':<16} {'source rows':>12} {'target rows':>12}  "
               f"{'source checksum':<16}  {'target checksum':<16}")
    for c in rows:
        click.echo(f"{c.source.table:<16} {c.source.rows:>12,} {c.target.rows:>12,}  "
                   f"{c.source.checksum[:16]:<16}  {c.target.checksum[:16]:<16}  "
                   f"{'ok' if c.ok else 'MISMATCH'}")


def _fail_on_mismatch(rows: list[Comparison], advice: str) -> None:
    bad = [c for c in rows if not c.ok]
    if bad:
        names = ", ".join(c.source.table for c in bad)
        click.echo(f"FAIL: source and target differ in {names}: {advice}", err=True)
        sys.exit(1)


@db.command("copy")
@click.option("--from", "source", required=True, metavar="URL",
              help="Source database (sqlite:////abs/path or postgresql+psycopg://...).")
@click.option("--to", "target", required=True, metavar="URL",
              help="Target database: empty, or made by `waymark migrate` at the same revision.")
@click.option("--force", is_flag=True, help="Replace the rows of a non-empty target.")
@click.option("--batch-rows", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows read and written per batch (bounds memory).")
def copy_cmd(source: str, target: str, force: bool, batch_rows: int) -> None:
    """Copy a Waymark database between SQLite and PostgreSQL, then verify every table.

    Stop the app first (docs/operations/scaling.md): the source must not change during the
    copy. Objects in object storage are not touched."""
    from waymark.db.copy import CopyError, copy_database, describe

    click.echo(f"copying {describe(source)} -> {describe(target)}")
    bar = None

    def on_total(total: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=max(total, 1), label="copying rows", show_pos=True)
        bar.__enter__()

    def progress(_table: str, rows: int) -> None:
        if bar is not None:
            bar.update(rows)

    try:
        report = copy_database(source, target, force=force, batch_rows=batch_rows,
                               progress=progress, on_total=on_total)
    except CopyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"copied {report.rows:,} rows at schema revision {report.revision} in "
               f"{report.seconds:.1f}s; verification (both sides read again):")
    _print_comparison(report.tables)
    for name in report.not_copied:
        click.echo(f"note: source table {name} is not part of the schema and was not copied")
    _fail_on_mismatch(report.tables, "was the app still writing to the source? Stop it and "
                      "copy again with --force")
    click.echo("OK: every table has the same rows and checksum on both sides")


@db.command("verify")
@click.option("--from", "source", required=True, metavar="URL")
@click.option("--to", "target", required=True, metavar="URL")
def verify_cmd(source: str, target: str) -> None:
    """Compare two databases table by table (row counts and content checksums)."""
    from waymark.db.copy import CopyError, verify_databases

    try:
        rows = verify_databases(source, target)
    except CopyError as exc:
        raise click.ClickException(str(exc)) from None
    _print_comparison(rows)
    _fail_on_mismatch(rows, "the databases are not copies of each other")
    click.echo("OK: every table has the same rows and checksum on both sides")
