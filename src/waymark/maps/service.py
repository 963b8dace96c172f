"""Maps and their members: create, list, change, trash and restore, share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.db.models import Change, Layer, Map, Member, User, utcnow
from waymark.errors import Conflict, Forbidden, Invalid, NotFound
from waymark.ids import clamp_to_row_range, is_row_id, new_public_id, new_uuid
from waymark.maps.access import ROLES, VISIBILITIES
from waymark.maps.state import DEFAULT_CONTROLS, DEFAULT_STYLE, iso, map_json

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000


def _check_title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise Invalid("title is required", details={"field": "title"})
    if len(title) > MAX_TITLE:
        raise Invalid(f"title must be at most {MAX_TITLE} characters", details={"field": "title"})
    return title.strip()


def _check_view(view: Any) -> str | None:
    if view is None:
        return None
    if not isinstance(view, dict):
        raise Invalid("default_view must be an object {lat, lon, zoom}", details={"field": "default_view"})
    try:
        lat, lon, zoom = float(view["lat"]), float(view["lon"]), int(view["zoom"])
    except (KeyError, TypeError, ValueError):
        raise Invalid("default_view needs numeric lat, lon and zoom",
                      details={"field": "default_view"}) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 <= zoom <= 22):
        raise Invalid("default_view is out of range (lat ±90, lon ±180, zoom 0–22)",
                      details={"field": "default_view"})
    return jsonutil.dumps({"lat": lat, "lon": lon, "zoom": zoom})


def _check_controls(value: Any) -> str | None:
    """{"page": {"search": bool, …}, "embed": {…}} (any part may be left out) -> JSON text."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(DEFAULT_CONTROLS):
        raise Invalid('controls must be {"page": {...}, "embed": {...}}', details={"field": "controls"})
    out: dict[str, dict[str, bool]] = {}
    for where, choices in value.items():
        names = DEFAULT_CONTROLS[where]
        if not isinstance(choices, dict) or set(choices) - set(names) or \
                not all(isinstance(v, bool) for v in choices.values()):
            raise Invalid(f"controls.{where} maps {', '.join(names)} to true or false",
                          details={"field": f"controls.{where}"})
        out[where] = dict(choices)
    return jsonutil.dumps(out)


def check_visibility(value: Any) -> str:
    if value not in VISIBILITIES:
        raise Invalid(f"visibility must be one of {', '.join(VISIBILITIES)}",
                      details={"field": "visibility"})
    return str(value)


def record_map_op(session: Session, map_: Map, user_id: int | None, op: str,
                  before: Any = None, after: Any = None) -> None:
    session.add(Change(map_id=map_.id, user_id=user_id, op=op,
                       before=jsonutil.dumps(before) if before is not None else None,
                       after=jsonutil.dumps(after) if after is not None else None))


def create_map(session: Session, owner_id: int, data: dict[str, Any], *,
               with_default_layer: bool = True) -> Map:
    map_ = Map(public_id=new_public_id(), owner_id=owner_id, title=_check_title(data.get("title")),
               description=str(data.get("description") or "")[:MAX_DESCRIPTION],
               visibility=check_visibility(data.get("visibility", "private")),
               default_view=_check_view(data.get("default_view")),
               basemap=str(data.get("basemap") or "default")[:50],
               controls=_check_controls(data.get("controls")))
    session.add(map_)
    session.flush()
    session.add(Member(map_id=map_.id, user_id=owner_id, role="owner"))
    if with_default_layer:
        session.add(Layer(public_id=new_uuid(), map_id=map_.id, name="Layer 1",
                          style=jsonutil.dumps(DEFAULT_STYLE), position=0))
    record_map_op(session, map_, owner_id, "map.create", None, {"title": map_.title})
    session.flush()
    session.refresh(map_)
    return map_


def update_map(session: Session, map_: Map, role: str | None, user_id: int,
               data: dict[str, Any]) -> Map:
    before = _settings_state(map_)
    if "visibility" in data and data["visibility"] != map_.visibility:
        if role != "owner":
            raise Forbidden("only the map's owner may change its visibility", code="owner_required")
        map_.visibility = check_visibility(data["visibility"])
    if "title" in data:
        map_.title = _check_title(data["title"])
    if "description" in data:
        if not isinstance(data["description"], str) or len(data["description"]) > MAX_DESCRIPTION:
            raise Invalid(f"description must be text of at most {MAX_DESCRIPTION} characters",
                          details={"field": "description"})
        map_.description = data["description"]
    if "default_view" in data:
        map_.default_view = _check_view(data["default_view"])
    if "basemap" in data:
        if not isinstance(data["basemap"], str) or not data["basemap"]:
            raise Invalid("basemap must be a basemap name", details={"field": "basemap"})
        map_.basemap = data["basemap"][:50]
    if "controls" in data:
        current = jsonutil.loads(map_.controls) if map_.controls else {}
        changes = jsonutil.loads(_check_controls(data["controls"]) or "{}")
        merged = {w: {**current.get(w, {}), **changes.get(w, {})} for w in DEFAULT_CONTROLS}
        map_.controls = jsonutil.dumps({w: c for w, c in merged.items() if c})
    map_.version += 1
    map_.updated_at = utcnow()
    record_map_op(session, map_, user_id, "map.update", before, _settings_state(map_))
    return map_


def _settings_state(map_: Map) -> dict[str, Any]:
    """What map history records of a settings change."""
    return {"title": map_.title, "description": map_.description, "visibility": map_.visibility,
            "basemap": map_.basemap, "default_view": jsonutil.loads(map_.default_view),
            "controls": jsonutil.loads(map_.controls) if map_.controls else None}


def trash_map(session: Session, map_: Map, user_id: int) -> None:
    map_.deleted_at = utcnow()
    map_.version += 1
    record_map_op(session, map_, user_id, "map.delete")


def restore_map(session: Session, map_: Map, user_id: int) -> None:
    if map_.deleted_at is None:
        raise Conflict("map is not in the trash", code="not_deleted")
    map_.deleted_at = None
    map_.version += 1
    record_map_op(session, map_, user_id, "map.restore")


def trash_expiry(map_: Map, trash_days: int):  # type: ignore[no-untyped-def]
    """When a deleted map leaves the trash: its owner can restore it for WAYMARK_TRASH_DAYS,
    then the retention job (maps/retention.py) archives it."""
    return map_.deleted_at + timedelta(days=trash_days) if map_.deleted_at else None


def list_maps(session: Session, actor: Actor, scope: str, q: str = "", limit: int = 50,
              offset: int = 0, *, trash_days: int) -> list[dict[str, Any]]:
    """scope: public (everyone), mine (owned), shared (member, not owner), trash (owned,
    deleted; `trash_days` is settings.trash_days)."""
    query = select(Map, Member.role).outerjoin(
        Member, (Member.map_id == Map.id) & (Member.user_id == (actor.user_id or -1)))
    if scope == "public":
        query = query.where(Map.visibility == "public", Map.deleted_at.is_(None))
    elif scope in ("mine", "shared", "trash"):
        uid = actor.require_user()
        if scope == "mine":
            query = query.where(Map.owner_id == uid, Map.deleted_at.is_(None))
        elif scope == "shared":
            query = query.where(Member.user_id == uid, Map.owner_id != uid, Map.deleted_at.is_(None))
        else:
            query = query.where(Map.owner_id == uid, Map.deleted_at.is_not(None))
    else:
        raise Invalid("scope must be public, mine, shared or trash", details={"field": "scope"})
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Map.title.ilike(like, escape="\\"),
                                Map.description.ilike(like, escape="\\")))
    query = query.order_by(Map.updated_at.desc(), Map.id.desc()).limit(min(max(limit, 1), 200)) \
        .offset(clamp_to_row_range(max(offset, 0)))
    out = []
    for map_, role in session.execute(query):
        item = map_json(map_, role)
        if scope == "trash":
            item["purge_after"] = iso(trash_expiry(map_, trash_days))  # UTC on either database
        out.append(item)
    return out


# ---- members -------------------------------------------------------------------------
def list_members(session: Session, map_: Map) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.map_id == map_.id).order_by(Member.id)))


def _check_role(role: Any) -> str:
    if role not in ROLES or role == "owner":
        raise Invalid("role must be editor or viewer", details={"field": "role"})
    return str(role)


def add_member(session: Session, map_: Map, by_user: int, email: str, role: Any) -> Member:
    role = _check_role(role)
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise NotFound("no user with this e-mail address", details={"field": "email"})
    existing = session.scalar(select(Member).where(Member.map_id == map_.id,
                                                   Member.user_id == user.id))
    if existing is not None:
        raise Conflict("this user is already a member", code="already_member")
    member = Member(map_id=map_.id, user_id=user.id, role=role)
    session.add(member)
    record_map_op(session, map_, by_user, "member.add", None, {"user_id": user.id, "role": role})
    session.flush()
    session.refresh(member)
    return member


def _get_member(session: Session, map_: Map, user_id: int) -> Member:
    if not is_row_id(user_id):
        raise NotFound("member not found")
    member = session.scalar(select(Member).where(Member.map_id == map_.id, Member.user_id == user_id))
    if member is None:
        raise NotFound("member not found")
    if member.role == "owner":
        raise Conflict("the owner's role cannot be changed or removed", code="owner_member")
    return member


def change_member(session: Session, map_: Map, by_user: int, user_id: int, role: Any) -> Member:
    member = _get_member(session, map_, user_id)
    before = member.role
    member.role = _check_role(role)
    record_map_op(session, map_, by_user, "member.update", {"user_id": user_id, "role": before},
                  {"user_id": user_id, "role": member.role})
    return member


def remove_member(session: Session, map_: Map, by_user: int, user_id: int) -> None:
    member = _get_member(session, map_, user_id)
    record_map_op(session, map_, by_user, "member.remove", {"user_id": user_id, "role": member.role})
    session.delete(member)
