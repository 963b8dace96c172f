"""The `waymark` command: serve, worker, migrate, check, user, import, export, seed-demo, deploy."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from waymark import __version__
from waymark.cli_support import database, refuse_node_key, settings_or_exit, writable_database


@click.group()
@click.version_option(__version__, prog_name="waymark")
def main() -> None:
    """Waymark: a self-hosted collaborative map platform."""


from waymark.serve_command import serve

main.add_command(serve)


@main.command()
@click.option("--threads", default=2, show_default=True)
@click.option("--metrics-port", type=int, default=0,
              help="Serve this worker's /metrics here (standalone workers; 0: off).")
def worker(threads: int, metrics_port: int) -> None:
    """Run the background job worker (imports, maintenance)."""
    from waymark.lean import skip_console_libraries

    skip_console_libraries()
    from waymark.jobs.queue import (
        Runtime,
        make_huey,
        requeue_stale_jobs,
        skip_unused_client_libraries,
    )

    settings = settings_or_exit()
    skip_unused_client_libraries(settings)  # before huey is imported
    from huey.consumer import Consumer

    from waymark.observability import wiring as observability
    from waymark.observability.metrics_server import start_metrics_server
    from waymark.storage.crypto import open_object_store

    refuse_node_key(settings)
    observability.setup_process(settings)  # JSON logs, build info, error tracking
    if metrics_port:
        start_metrics_server(settings, settings.host, metrics_port)
    huey = make_huey(settings, Runtime(settings, database(settings), open_object_store(settings)))
    observability.watch_jobs(huey, report_errors=bool(settings.sentry_dsn))
    try:  # jobs a dead worker left behind are taken over now, not at the next minute
        requeue_stale_jobs(huey)
    except Exception as exc:  # noqa: BLE001 - the periodic task tries again every minute
        click.echo(f"could not look for stale jobs yet: {exc}", err=True)
    Consumer(huey, workers=threads, worker_type="thread").run()


# ---- database and configuration --------------------------------------------------------
@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Apply database migrations (SQLite or PostgreSQL, from WAYMARK_DATABASE_URL)."""
    from waymark.db.migrate import current_revision, upgrade

    settings = settings_or_exit()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@main.command()
@click.option("--deploy", is_flag=True, help="Also refuse configuration unsafe for production.")
def check(deploy: bool) -> None:
    """Check configuration, database, schema and object storage; exit 1 on a problem."""
    from waymark.db.migrate import current_revision, head_revision
    from waymark.storage import open_store

    settings = settings_or_exit()
    failures: list[str] = []
    for key, value in settings.redacted().items():
        click.echo(f"  {key} = {value}")
    try:
        db = database(settings)
        db.ping()
        current, head = current_revision(settings.resolved_database_url), head_revision()
        if current != head:
            failures.append(f"database schema is at {current}, code expects {head}: run `waymark migrate`")
        if not settings.is_sqlite:
            from waymark.db.pool import connection_budget

            with db.engine.connect() as conn:
                budget = connection_budget(settings, conn)
            click.echo(f"  {budget.describe()}")
            problem = budget.problem()
            if problem and not settings.db_transaction_pooler:  # then PgBouncer's budget counts
                failures.append(problem)
        db.dispose()
    except Exception as exc:  # noqa: BLE001 - reported to the operator
        failures.append(f"database unreachable: {exc}")
    try:
        open_store(settings.resolved_object_store_url).ping_sync()
    except Exception as exc:  # noqa: BLE001
        failures.append(f"object storage unreachable: {exc}")
    if not settings.is_sqlite and (deploy or settings.backup_url):
        from waymark.backup.pg_status import describe_backups

        line, problem = describe_backups(settings)
        click.echo(f"  database backups: {line}")
        if problem and (deploy or settings.env == "prod"):
            failures.append(problem)
    if deploy or settings.env != "dev":
        # --deploy applies the production rules whatever the profile (problems() skips dev)
        checked = dataclasses.replace(settings, env="prod") if deploy else settings
        failures.extend(checked.problems())
    if deploy:
        from waymark.deploy.node_state import node_local_state, shared_database_problems

        local = node_local_state(settings)
        click.echo("node-local state (on this node only, lost with it):"
                   if local else "node-local state: none")
        for item in local:
            click.echo(f"  - {item}")
        failures.extend(shared_database_problems(settings))
    if failures:
        for failure in failures:
            click.echo(f"FAIL: {failure}", err=True)
        sys.exit(1)
    click.echo("OK")


# ---- users -----------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Manage user accounts."""


@user.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--password", envvar="WAYMARK_NEW_PASSWORD", default=None,
              help="Password (else prompted, or read from stdin with --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--admin", is_flag=True)
def user_create(email: str, name: str, password: str | None, password_stdin: bool, admin: bool) -> None:
    """Create a user account."""
    from waymark.accounts.service import create_user
    from waymark.errors import ApiError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = writable_database(settings_or_exit())
    try:
        with db.write() as s:
            created = create_user(s, email, password or "", name, is_admin=admin)
            click.echo(f"created user {created.id} <{created.email}>")
    except ApiError as exc:
        raise click.ClickException(exc.message) from None


from waymark.admin.commands import USER_COMMANDS

for _command in USER_COMMANDS:
    user.add_command(_command)


# ---- import / export -------------------------------------------------------------------
@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "map_id", help="Import into this map (public id); else a new map is made.")
@click.option("--layer", "layer_id", help="Import into this layer; else new layer(s).")
@click.option("--owner", help="E-mail of the owner of a new map (required without --map).")
@click.option("--format", "fmt", default=None,
              help="geojson, csv, gpx, kml, kmz, shapefile, gpkg or fgb (else detected).")
@click.option("--skip-invalid", is_flag=True, help="Skip bad features/rows instead of failing.")
def import_cmd(path: Path, map_id: str | None, layer_id: str | None, owner: str | None,
               fmt: str | None, skip_invalid: bool) -> None:
    """Import a GeoJSON, CSV, GPX or KML/KMZ file, with a progress bar."""
    from sqlalchemy import select

    from waymark.db.models import Layer, Map, User
    from waymark.formats import FormatError, detect_format, read
    from waymark.maps.imports import import_result
    from waymark.maps.service import create_map

    settings = settings_or_exit()
    db = writable_database(settings)
    data = path.read_bytes()
    try:
        fmt = fmt or detect_format(path.name, data)
        click.echo(f"reading {path.name} ({fmt}, {len(data):,} bytes)...")
        result = read(data, fmt, skip_invalid=skip_invalid)
    except FormatError as exc:
        raise click.ClickException(f"{path.name}: {exc}") from None
    with db.write() as s:
        if map_id:
            map_ = s.scalar(select(Map).where(Map.public_id == map_id, Map.deleted_at.is_(None)))
            if map_ is None:
                raise click.ClickException(f"no map {map_id}")
            uid = map_.owner_id
        else:
            owner_user = s.scalar(select(User).where(User.email == (owner or "").lower()))
            if owner_user is None:
                raise click.ClickException("give --map, or --owner with an existing user's e-mail")
            map_ = create_map(s, owner_user.id, {"title": path.stem}, with_default_layer=False)
            uid = owner_user.id
        layer = None
        if layer_id:
            layer = s.scalar(select(Layer).where(Layer.public_id == layer_id, Layer.map_id == map_.id))
            if layer is None:
                raise click.ClickException(f"no layer {layer_id} in map {map_.public_id}")
        map_pk, public_id = map_.id, map_.public_id
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    with click.progressbar(length=max(result.feature_count, 1), label="importing") as bar:
        seen = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        summary = import_result(db, map_pk, result, uid, layer=layer, default_name=path.stem,
                                info={"filename": path.name, "source": "cli"}, progress=progress)
    click.echo(f"imported {summary.imported} features into map {public_id} "
               f"({settings.public_url}/m/{public_id})")


@main.command("export")
@click.option("--map", "map_id", required=True)
@click.option("--layer", "layer_id", default=None)
@click.option("--format", "fmt", default="geojson", show_default=True,
              type=click.Choice(["geojson", "csv", "gpx", "kml", "kmz", "shapefile", "gpkg", "fgb",
                                 "bundle"]))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: standard output).")
def export_cmd(map_id: str, layer_id: str | None, fmt: str, output: Path | None) -> None:
    """Export a layer or a whole map (bundle: everything, re-importable)."""
    from sqlalchemy import select

    from waymark import jsonutil
    from waymark.db.models import Map
    from waymark.maps.exports import export_layers, make_bundle
    from waymark.maps.layers import get_layer, list_layers

    db = database(settings_or_exit())
    with db.read() as s:
        map_ = s.scalar(select(Map).where(Map.public_id == map_id))
        if map_ is None:
            raise click.ClickException(f"no map {map_id}")
        if fmt == "bundle":
            data = jsonutil.dumpb(make_bundle(s, map_))
        else:
            layers = [get_layer(s, map_, layer_id)] if layer_id else list_layers(s, map_)
            data, _, _ = export_layers(s, layers, fmt, map_.title)
    if output:
        output.write_bytes(data)
        click.echo(f"wrote {len(data):,} bytes to {output}")
    else:
        sys.stdout.buffer.write(data)


@main.command("seed-demo")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Apply database migrations first.")
def seed_demo_cmd(migrate: bool) -> None:
    """Create the demo user and public demo map (idempotent). While the service is read-only
    nothing is written: it says so and succeeds, so `serve` still starts (a database move
    starts the new instance before `waymark maintenance off`)."""
    from waymark.demo.seed import DEMO_EMAIL, seed_demo

    settings = settings_or_exit()
    if migrate:
        from waymark.db.migrate import upgrade

        upgrade(settings.resolved_database_url)
    try:
        db = writable_database(settings)
    except click.ClickException as refused:
        click.echo(f"demo map not checked: {refused.message}", err=True)
        return
    map_id, password = seed_demo(db)
    click.echo(f"demo map: {settings.public_url}/m/{map_id}")
    if password:
        click.echo(f"demo user: {DEMO_EMAIL} password: {password}  (shown once; a new one: "
                   f"waymark user reset-password {DEMO_EMAIL})")


# ---- data safety: backup, restore, keys (implementations in waymark.backup) -------------
from waymark.backup.commands import backup, keys, restore

main.add_command(backup)
main.add_command(restore)
main.add_command(keys)

from waymark.deploy.commands import deploy

main.add_command(deploy)

from waymark.maintenance.commands import maintenance

main.add_command(maintenance)
from waymark.db.commands import db

main.add_command(db)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
