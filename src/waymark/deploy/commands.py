"""`waymark deploy ...`: release, rollback, status, stop, haproxy-config."""

from __future__ import annotations

from pathlib import Path

import click

from waymark.deploy.plan import DeployError, Plan, load_plan

PLAN_OPTION = click.option(
    "--plan", "plan_path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Deploy plan (TOML): instances, HAProxy socket, commands.")


def _plan(path: Path) -> Plan:
    try:
        return load_plan(path)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None


def _run(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def deploy() -> None:
    """Zero-downtime deploys of app processes behind HAProxy (docs/operations/deploy.md)."""


@deploy.command("release")
@PLAN_OPTION
@click.argument("release", type=click.Path(exists=True, file_okay=False, path_type=Path))
def release_cmd(plan_path: Path, release: Path) -> None:
    """Migrate, check, then roll RELEASE (a directory with bin/waymark) onto every instance."""
    from waymark.deploy.rolling import Deployer

    _run(lambda: Deployer(_plan(plan_path), click.echo).release(release))


@deploy.command("rollback")
@PLAN_OPTION
def rollback_cmd(plan_path: Path) -> None:
    """Roll the previous release back onto every instance."""
    from waymark.deploy.rolling import Deployer

    _run(lambda: Deployer(_plan(plan_path), click.echo).rollback())


@deploy.command("status")
@PLAN_OPTION
def status_cmd(plan_path: Path) -> None:
    """Releases, processes and HAProxy's view of each instance."""
    from waymark.deploy import processes
    from waymark.deploy.haproxy import RuntimeApi
    from waymark.deploy.rolling import State

    plan = _plan(plan_path)
    state = State.load(plan.state_dir / "state.json")
    click.echo(f"current:  {state.current or '-'}\nprevious: {state.previous or '-'}")
    try:
        stats = RuntimeApi(plan.haproxy_socket, plan.backend).stats()
    except DeployError as exc:
        stats = {}
        click.echo(f"haproxy: {exc}")
    for instance in plan.instances:
        entry = state.instances.get(instance.name, {})
        pid = entry.get("pid")
        running = "running" if processes.alive(pid) else "stopped"
        lb = stats.get(instance.name, {}).get("status", "?")
        click.echo(f"{instance.name} :{instance.port} pid={pid or '-'} {running} haproxy={lb} "
                   f"release={Path(entry['release']).name if entry.get('release') else '-'}")


@deploy.command("stop")
@PLAN_OPTION
def stop_cmd(plan_path: Path) -> None:
    """Drain and stop every instance of the plan."""
    from waymark.deploy.rolling import Deployer

    _run(lambda: Deployer(_plan(plan_path), click.echo).stop_all())


@deploy.command("haproxy-config")
@PLAN_OPTION
@click.option("--bind", default="127.0.0.1:8080", show_default=True)
@click.option("--metrics-bind", default="127.0.0.1:8404", show_default=True)
@click.option("--conn-limit", type=int, default=100, show_default=True,
              help="Concurrent connections per client IP.")
@click.option("--rate-limit", type=int, default=500, show_default=True,
              help="Requests per client IP per 10 seconds.")
@click.option("--socket", "socket_path", default=None,
              help="Admin socket path inside HAProxy's filesystem (default: the plan's).")
def haproxy_config_cmd(plan_path: Path, bind: str, metrics_bind: str, conn_limit: int,
                       rate_limit: int, socket_path: str | None) -> None:
    """Print the haproxy.cfg for the plan's instances."""
    from waymark.deploy.haproxy import LimitOptions, render_config

    if conn_limit < 1 or rate_limit < 1:
        raise click.ClickException("--conn-limit and --rate-limit must be positive")
    options = LimitOptions(bind=bind, metrics_bind=metrics_bind, conn_limit=conn_limit,
                           rate_limit=rate_limit)
    click.echo(render_config(_plan(plan_path), options, socket_path), nl=False)
