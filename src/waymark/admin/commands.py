"""`waymark user list | show | disable | enable | delete | set-admin | export` (thin: the
rules live in admin/users.py, shared with the admin page)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from waymark.errors import ApiError


def _context(*, writes: bool = False) -> tuple[Any, Any]:
    """Settings and database; `writes`: refused while the service is read-only."""
    from waymark.cli_support import database, settings_or_exit, writable_database

    settings = settings_or_exit()
    return settings, (writable_database if writes else database)(settings)


def _user_id(db: Any, who: str) -> int:
    from waymark.admin.users import find_user

    with db.read() as s:
        return find_user(s, who).id


def _fail(exc: ApiError) -> click.ClickException:
    return click.ClickException(exc.message)


def _line(u: dict[str, Any]) -> str:
    state = f"disabled {u['disabled_at'][:10]}" if u["disabled_at"] else "active"
    admin = " admin" if u["is_admin"] else ""
    return (f"{u['id']:>6}  {u['email']:<36} {u['display_name'][:24]:<24} {state}{admin}  "
            f"maps {u['maps_owned']}  tokens {u['active_tokens']}")


@click.command("list")
@click.option("--search", default="", help="Part of an e-mail or a name.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def user_list(search: str, limit: int, as_json: bool) -> None:
    """List accounts (id, e-mail, name, state, maps owned, active tokens)."""
    from waymark.admin.users import list_users

    _, db = _context()
    with db.read() as s:
        users = list_users(s, search, limit)
    if as_json:
        click.echo(json.dumps(users, indent=2))
        return
    for u in users:
        click.echo(_line(u))
    click.echo(f"{len(users)} account(s)")


@click.command("show")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def user_show(user: str, as_json: bool) -> None:
    """One account by e-mail or id."""
    from waymark.admin.users import find_user, user_json

    _, db = _context()
    try:
        with db.read() as s:
            info = user_json(s, find_user(s, user))
    except ApiError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key:>14}: {value}")


def _update(who: str, change: Callable[[Any, Any], Any]) -> str:
    """Apply `change(session, user)` to one account in a write transaction; its e-mail."""
    from waymark.admin.users import find_user

    _, db = _context(writes=True)
    try:
        with db.write() as s:
            account = find_user(s, who)
            change(s, account)
            return account.email
    except ApiError as exc:
        raise _fail(exc) from None


@click.command("disable")
@click.argument("user")
def user_disable(user: str) -> None:
    """Disable an account: its sessions and API tokens end at once; it cannot log in."""
    from waymark.admin.users import disable_user

    click.echo(f"disabled {_update(user, disable_user)}: sessions ended, API tokens revoked")


@click.command("enable")
@click.argument("user")
def user_enable(user: str) -> None:
    """Let a disabled account log in again (its old tokens stay revoked)."""
    from waymark.admin.users import enable_user

    click.echo(f"enabled {_update(user, enable_user)}")


@click.command("set-admin")
@click.argument("user")
@click.option("--remove", is_flag=True, help="Take the administrator role away instead.")
def user_set_admin(user: str, remove: bool) -> None:
    """Make an account an administrator (admin page, account administration)."""
    from waymark.admin.users import set_admin

    email = _update(user, lambda s, account: set_admin(s, account, not remove))
    click.echo(f"{email} is {'no longer ' if remove else ''}an administrator")


@click.command("delete")
@click.argument("user")
@click.option("--maps", type=click.Choice(["transfer", "trash"]), default=None,
              help="What happens to the maps the user owns (asked when not given).")
@click.option("--to", "heir", default=None, help="With --maps transfer: who receives them.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(user: str, maps: str | None, heir: str | None, yes: bool) -> None:
    """Delete an account and its personal data (export it first with `waymark user export`)."""
    from waymark.admin.users import delete_user, find_user, owned_map_count
    from waymark.maps.retention import archiver
    from waymark.storage.crypto import open_object_store

    settings, db = _context(writes=True)
    try:
        with db.read() as s:
            account = find_user(s, user)
            uid, email, owned = account.id, account.email, owned_map_count(s, account)
    except ApiError as exc:
        raise _fail(exc) from None
    if owned and maps is None:
        maps = click.prompt(f"{email} owns {owned} map(s): transfer them to another user, or "
                            "move them to the trash", type=click.Choice(["transfer", "trash"]))
    if owned and maps == "transfer" and not heir:
        heir = click.prompt("E-mail of the user who receives the maps")
    if not yes:
        click.confirm(f"Delete {email} and their personal data? This cannot be undone",
                      abort=True)
    try:
        report = delete_user(db, uid, maps, heir, archive_map=archiver(
            settings, db, open_object_store(settings)))
    except ApiError as exc:
        raise _fail(exc) from None
    click.echo(f"deleted {email}")
    if report["transferred"]:
        click.echo(f"  {len(report['transferred'])} map(s) transferred to {report['to']}")
    if report["trashed"]:
        click.echo(f"  {len(report['trashed'])} map(s) moved to the trash and archived")


@click.command("export")
@click.argument("user")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip file to write (account.json + maps/<id>.json bundles).")
def user_export(user: str, output: Path) -> None:
    """Everything a user owns: map bundles plus a JSON of the account, in one zip."""
    from waymark.admin.users import export_user

    _, db = _context()
    try:
        data = export_user(db, _user_id(db, user))
    except ApiError as exc:
        raise _fail(exc) from None
    output.write_bytes(data)
    click.echo(f"wrote {len(data):,} bytes to {output}")


@click.command("reset-password")
@click.argument("who")
@click.option("--prompt", "ask", is_flag=True, help="Ask for the new password.")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def user_reset_password(who: str, ask: bool, password_stdin: bool) -> None:
    """Give WHO (e-mail or id) a new password (random and printed, unless --prompt or
    --password-stdin). Every session of that user ends; API tokens stay valid."""
    import secrets
    import sys

    from waymark.accounts.service import set_password
    from waymark.admin.users import find_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif ask:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        password = secrets.token_urlsafe(12)
    _, db = _context(writes=True)
    try:
        with db.write() as s:
            found = find_user(s, who)
            if found.disabled_at is not None:
                raise click.ClickException(
                    f"{found.email} is disabled: `waymark user enable {found.email}` first")
            set_password(found, password)
            email = found.email
    except ApiError as exc:
        raise _fail(exc) from None
    if ask or password_stdin:
        click.echo(f"password of {email} changed; their sessions have ended")
    else:
        click.echo(f"new password for {email}: {password}  (shown once; their sessions have "
                   "ended)")


USER_COMMANDS = [user_list, user_show, user_disable, user_enable, user_set_admin, user_delete,
                 user_export, user_reset_password]
