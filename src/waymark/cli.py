"""The `waymark` command: serve, worker, migrate, check, user, import, export, seed-demo, deploy."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from waymark import __version__
from waymark.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _refuse_node_key(settings: Settings) -> None:
    """Nodes sharing a database must share the master key too (Settings.node_key_problem)."""
    problem = settings.node_key_problem()
    if problem:
        raise click.ClickException(f"refusing to start: {problem}")


def _require_database(settings: Settings) -> None:
    """Without --migrate a missing SQLite file means the init step (restore, migrate) has
    not run or failed: starting would create an empty database, and a running Litestream
    would replicate it over the backup."""
    if not settings.is_sqlite:
        return
    from waymark.backup.litestream import database_path

    if not database_path(settings).exists():
        raise click.ClickException(
            f"refusing to start: the database {database_path(settings)} does not exist and "
            "--no-migrate was given: run `waymark restore --boot` and `waymark migrate` first "
            "(the init step), or start without --no-migrate")


def _db(settings: Settings):  # type: ignore[no-untyped-def]
    from waymark.db.engine import Database

    return Database.for_settings(settings)


# After a stop signal, granian's master kills a worker still running this long after it was
# asked to stop: one forked a moment before the signal can miss it (CPython drops signals that
# arrive between fork and its after-fork handlers) and would keep the master waiting for good.
# Below every configured grace period (staging 30 s, prod 45 s, Kubernetes 60 s).
WORKERS_KILL_TIMEOUT_S = 20


@click.group()
@click.version_option(__version__, prog_name="waymark")
def main() -> None:
    """Waymark: a self-hosted collaborative map platform."""


# ---- serving -------------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="Address to bind (WAYMARK_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (WAYMARK_PORT, default 8000).")
@click.option("--workers", type=int, default=None, help="App processes (WAYMARK_WORKERS).")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Apply database migrations before starting.")
@click.option("--job-worker/--no-job-worker", default=True, show_default=True,
              help="Also run a background job worker (imports) next to the app.")
@click.option("--backup/--no-backup", default=True, show_default=True,
              help="With WAYMARK_BACKUP_URL: restore a missing database, then run under Litestream.")
def serve(host: str | None, port: int | None, workers: int | None, reload: bool, migrate: bool,
          job_worker: bool, backup: bool) -> None:
    """Run the app server (granian) and a job worker (under Litestream with a backup URL)."""
    from waymark.lean import skip_console_libraries

    skip_console_libraries()
    from waymark.backup import supervise

    settings = _settings()
    if settings.env != "dev" and settings.problems():
        raise click.ClickException("unsafe configuration:\n  - " + "\n  - ".join(settings.problems()))
    _refuse_node_key(settings)
    host = host or settings.host
    port = port or settings.port
    _refuse_a_second_server(settings, host, port, under_litestream=supervise.is_inner())
    replicate, inner = supervise.before_serve(settings, backup)  # boot-time restore
    if inner:
        migrate = False  # the outer `serve` (Litestream's parent) already did it
    elif not migrate:
        _require_database(settings)
    # in child processes: this one lives as long as the server and never imports the app
    if migrate:
        _run_command("migrate")
    demo_lines: list[str] = []
    if settings.demo_data and not inner:
        demo_lines = _run_command("seed-demo", "--no-migrate").splitlines()
    workers = workers or settings.workers
    if replicate:  # Litestream becomes this process and runs the app as its child
        for line in demo_lines:  # this process is replaced: no later moment to print them
            click.echo(line)
        supervise.exec_under_litestream(settings, host, port, workers, reload, job_worker)
    # the workers' settings say how many they are: with several and no Redis they share
    # real time, presence and rate limits through the broker run here, sessions through files
    os.environ["WAYMARK_WORKERS"] = str(workers)
    settings = dataclasses.replace(settings, workers=workers)
    broker = None
    if settings.broker_socket is not None:
        from waymark.realtime.broker import Broker

        broker = Broker(settings.broker_socket, settings.realtime_window)
        broker.start()
    from waymark.observability.metrics_server import prepare_serve

    observe_args = prepare_serve(settings, host)  # metrics dir + listener, JSON logs
    cmd = [sys.executable, "-m", "waymark.appserver", "--interface", "asgi", "--host", host, "--port",
           str(port), "--workers", str(workers), "--no-access-log",
           "--workers-kill-timeout", str(WORKERS_KILL_TIMEOUT_S), *observe_args,
           "waymark.asgi:app"]
    if reload:
        cmd.insert(-1, "--reload")
    if job_worker:  # forked by granian's master, sharing the app's libraries (decision 0025)
        cmd.insert(3, "--waymark-job-worker")
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def forward(signum, _frame):  # type: ignore[no-untyped-def]
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def start(args: list[str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args)
        children.append(child)
        if stopping:  # the stop came while it was being started
            child.send_signal(stopping[0])
        return child

    # before any child exists: a stop signal never ends this process and orphans them
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    click.echo(f"Waymark {__version__} ({settings.env}) on http://{host}:{port}")
    server = start(cmd)
    if demo_lines:
        _announce_when_ready(host, port, server, demo_lines)
    code = server.wait()
    for child in children:
        if child.poll() is None:
            child.terminate()
        child.wait()
    if broker is not None:
        broker.stop()
    sys.exit(code)


def _run_command(*args: str) -> str:
    """Run `waymark <args>` in a child process; its standard output (errors pass through)."""
    done = subprocess.run([sys.executable, "-m", "waymark.cli", *args], stdout=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"`waymark {' '.join(args)}` failed (see above)")
    return done.stdout


def _announce_when_ready(host: str, port: int, server: subprocess.Popen[bytes],
                         lines: list[str]) -> None:
    """Print ``lines`` once the app answers /readyz: after the server's start-up lines, so
    the demo password does not scroll away above them."""
    import threading
    import time
    import urllib.request

    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104  # nosec B104 - a mapping
    url = f"http://{f'[{local}]' if ':' in local else local}:{port}/readyz"

    def wait_then_print() -> None:
        while server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310 - ours
                    if response.status == 200:
                        click.echo("\n".join(["", *lines, ""]))
                        return
            except OSError:  # not listening yet, or 503 while starting
                pass
            time.sleep(0.2)

    threading.Thread(target=wait_then_print, name="announce", daemon=True).start()


def _refuse_a_second_server(settings: Settings, host: str, port: int,
                            under_litestream: bool) -> None:
    """Never two listeners on one port; without Redis, one `serve` per data dir (the lock is
    held for this process's life; under Litestream by the outer `serve`, which execs it)."""
    from waymark.deploy.serve_lock import ServeRefused, check_port_free, lock_data_dir

    try:
        if not settings.redis_url and not under_litestream:
            lock_data_dir(settings.data_dir, f"http://{host}:{port}")
        check_port_free(host, port)
    except ServeRefused as exc:
        raise click.ClickException(str(exc)) from None


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

    settings = _settings()
    skip_unused_client_libraries(settings)  # before huey is imported
    from huey.consumer import Consumer

    from waymark.observability import wiring as observability
    from waymark.observability.metrics_server import start_metrics_server
    from waymark.storage.crypto import open_object_store

    _refuse_node_key(settings)
    observability.setup_process(settings)  # JSON logs, build info, error tracking
    if metrics_port:
        start_metrics_server(settings, settings.host, metrics_port)
    huey = make_huey(settings, Runtime(settings, _db(settings), open_object_store(settings)))
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

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at revision {current_revision(settings.resolved_database_url)}")


@main.command()
@click.option("--deploy", is_flag=True, help="Also refuse configuration unsafe for production.")
def check(deploy: bool) -> None:
    """Check configuration, database, schema and object storage; exit 1 on a problem."""
    from waymark.db.migrate import current_revision, head_revision
    from waymark.storage import open_store

    settings = _settings()
    failures: list[str] = []
    for key, value in settings.redacted().items():
        click.echo(f"  {key} = {value}")
    try:
        db = _db(settings)
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
    db = _db(_settings())
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
    from waymark.maintenance.mode import read_state
    from waymark.maps.imports import import_result
    from waymark.maps.service import create_map

    settings = _settings()
    db = _db(settings)
    state = read_state(db)
    if state is not None:
        raise click.ClickException(f"the service is read-only ({state.message}); "
                                   "import after `waymark maintenance off`")
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

    db = _db(_settings())
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
    """Create the demo user and public demo map (idempotent)."""
    from waymark.demo.seed import DEMO_EMAIL, seed_demo

    settings = _settings()
    if migrate:
        from waymark.db.migrate import upgrade

        upgrade(settings.resolved_database_url)
    map_id, password = seed_demo(_db(settings))
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
