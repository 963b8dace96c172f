"""Who may do what on a map. One place, used by every endpoint.

A map you may not see is a 404 (its existence is not leaked); a map you may see but not
change is a 403.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark.accounts.actor import Actor
from waymark.db.models import Map, Member
from waymark.errors import Forbidden, NotFound

ROLES = ("viewer", "editor", "owner")
VISIBILITIES = ("private", "unlisted", "public")
#: Who may see a map without a role on it: anyone with the link (unlisted) or anyone at all
#: (public). The one place this is decided; the routes (`check`) and the published-read fast
#: paths (`published_reads.resolve_*`) both ask `anyone_may_view`.
ANON_VISIBLE = ("public", "unlisted")
RANK = {None: 0, "viewer": 1, "editor": 2, "owner": 3}
NEED = {"view": 0, "edit": 2, "own": 3}
#: Anonymous reads of maps anyone may see (public, unlisted) are open to pages on any site:
#: Leaflet/MapLibre pages, geojson.io, QGIS. No credentials are ever allowed cross-origin,
#: and answers to signed-in or token requests carry no CORS header at all.
OPEN_CORS = {"Access-Control-Allow-Origin": "*"}


def anyone_may_view(visibility: str) -> bool:
    """May someone without a role on the map (anonymous included) see it?"""
    return visibility in ANON_VISIBLE


def is_public(visibility: str | None) -> bool:
    """Listed and shareable through shared caches (Redis, CDNs), unlike unlisted maps."""
    return visibility == "public"


def cors_headers(actor: Actor) -> dict[str, str]:
    """Headers for a successful read of map data: open to any origin only when anonymous
    (an anonymous caller can only have read a public or unlisted map)."""
    return {} if actor.is_authenticated else dict(OPEN_CORS)


def role_of(session: Session, map_: Map, actor: Actor) -> str | None:
    if actor.user_id is None:
        return None
    if map_.owner_id == actor.user_id:
        return "owner"
    return session.scalar(select(Member.role).where(Member.map_id == map_.id,
                                                    Member.user_id == actor.user_id))


def load_map(session: Session, public_id: str, actor: Actor, need: str = "view", *,
             include_deleted: bool = False, for_update: bool = False) -> tuple[Map, str | None]:
    """Return (map, role) or raise 404/403. Writes also require a write-scoped actor."""
    query = select(Map).where(Map.public_id == public_id)
    if for_update:
        query = query.with_for_update(of=Map)  # not the joined owner (PostgreSQL refuses)
    map_ = session.scalar(query)
    if map_ is None:
        raise NotFound("map not found")
    role = role_of(session, map_, actor)
    check(map_.visibility, map_.deleted_at is not None, role, actor, need,
          include_deleted=include_deleted)
    return map_, role


def role_from(owner_id: int, member_role: str | None, actor: Actor) -> str | None:
    """role_of for callers that read the owner and the membership row in their own query."""
    if actor.user_id is None:
        return None
    return "owner" if owner_id == actor.user_id else member_role


def check(visibility: str, deleted: bool, role: str | None, actor: Actor, need: str = "view", *,
          include_deleted: bool = False) -> None:
    """The rule itself: raise 404/401/403 unless `actor` with `role` may do `need`."""
    if deleted and not (include_deleted and role == "owner"):
        raise NotFound("map not found")
    if role is None and not anyone_may_view(visibility):
        raise NotFound("map not found")
    if RANK[role] < NEED[need]:
        actor.require_user()  # anonymous: 401, so clients know to log in
        if need == "own":
            raise Forbidden("only the map's owner may do this", code="owner_required")
        raise Forbidden("you need the editor role on this map", code="editor_required")
    if need != "view":
        actor.require_write()
