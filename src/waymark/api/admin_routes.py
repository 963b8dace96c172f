"""/api/v1/admin/users and the /admin/users page: account administration for administrators.

Anonymous callers get 401 (the page: a log-in redirect); non-administrators 403 on the API
and the plain 404 page, so the page's existence is not advertised.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select

from waymark.accounts.actor import Actor
from waymark.admin import users as admin
from waymark.db.models import Map
from waymark.errors import Conflict
from waymark.maps.events import map_event
from waymark.pages import render_page
from waymark.web import Services, int_query, threaded

USERS = "/api/v1/admin/users"



def _not_self(actor: Actor, user_id: int, what: str) -> None:
    if actor.user_id == user_id:
        raise Conflict(f"you cannot {what} your own account here; use the command line",
                       code="own_account")


@get(USERS, tags=["admin"])
@threaded
def list_users(request: Request, services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Accounts, searched by e-mail or name (`q`); administrators only."""
    admin.require_admin(actor)
    with services.db.read() as s:
        return admin.list_users(s, request.query_params.get("q", "")[:200],
                                int_query(request, "limit", 50), int_query(request, "offset", 0))


@get(USERS + "/{user_id:int}", tags=["admin"])
@threaded
def show_user(services: Services, actor: Actor, user_id: int) -> dict[str, Any]:
    admin.require_admin(actor)
    with services.db.read() as s:
        return admin.user_json(s, admin.find_user(s, user_id))


@post(USERS + "/{user_id:int}/disable", status_code=200, tags=["admin"])
@threaded
def disable_user(services: Services, actor: Actor, user_id: int) -> dict[str, Any]:
    """Disable: every session and API token of the account ends at once."""
    admin.require_admin(actor)
    _not_self(actor, user_id, "disable")
    with services.db.write() as s:
        user = admin.find_user(s, user_id)
        map_pks = admin.disable_user(s, user)
        maps = list(s.scalars(select(Map.public_id).where(Map.id.in_(map_pks)))) if map_pks else []
        out = admin.user_json(s, user)
    if services.edits is not None:  # open websockets of the account re-check their access
        for public_id in maps:
            services.edits.publish(public_id, map_event("access.changed", actor, user_id=user_id))
    return out


@post(USERS + "/{user_id:int}/enable", status_code=200, tags=["admin"])
@threaded
def enable_user(services: Services, actor: Actor, user_id: int) -> dict[str, Any]:
    admin.require_admin(actor)
    with services.db.write() as s:
        user = admin.find_user(s, user_id)
        admin.enable_user(s, user)
        return admin.user_json(s, user)


@delete(USERS + "/{user_id:int}", status_code=200, tags=["admin"])
@threaded
def delete_user(request: Request, services: Services, actor: Actor,
                user_id: int) -> dict[str, Any]:
    """Delete an account and its personal data. `maps=transfer&to=<e-mail>` or `maps=trash`
    says what happens to the maps it owns (422 naming the count when missing)."""
    from waymark.maps.retention import archiver

    admin.require_admin(actor)
    _not_self(actor, user_id, "delete")
    return admin.delete_user(services.db, user_id, request.query_params.get("maps"),
                             request.query_params.get("to"),
                             archive_map=archiver(services.settings, services.db, services.store))


@get("/admin/users", include_in_schema=False)
@threaded
def admin_users_page(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if not actor.is_authenticated:
        return Redirect("/login?next=/admin/users")
    if not actor.is_admin:
        return render_page(request, services, actor, "404.html", status=404, what="page")
    q = request.query_params.get("q", "")[:200]
    with services.db.read() as s:
        users = admin.list_users(s, q, limit=200)
    return render_page(request, services, actor, "admin_users.html", users=users, q=q)


ROUTES = [list_users, show_user, disable_user, enable_user, delete_user, admin_users_page]
