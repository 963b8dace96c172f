"""`waymark serve`: the app server (granian) with its job worker, broker and metrics
listener, under Litestream when a backup URL is set; stop signals reach every child."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import click

from waymark import __version__
from waymark.cli_support import refuse_node_key, settings_or_exit
from waymark.settings import Settings

# After a stop signal, granian's master kills a worker still running this long after it was
# asked to stop: one forked a moment before the signal can miss it (CPython drops signals that
# arrive between fork and its after-fork handlers) and would keep the master waiting for good.
# Below every configured grace period (staging 30 s, prod 45 s, Kubernetes 60 s).
WORKERS_KILL_TIMEOUT_S = 20


@click.command()
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

    settings = settings_or_exit()
    if settings.env != "dev" and settings.problems():
        raise click.ClickException("unsafe configuration:\n  - " + "\n  - ".join(settings.problems()))
    refuse_node_key(settings)
    host = host or settings.host
    port = port or settings.port
    _refuse_a_second_server(settings, host, port, under_litestream=supervise.is_inner())
    replicate, inner = supervise.before_serve(settings, backup)  # boot-time restore
    if inner:
        migrate = False  # the outer `serve` (Litestream's parent) already did it
    elif not migrate:
        require_database(settings)
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


def require_database(settings: Settings) -> None:
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
