"""Account administration: list, show, disable, enable, make admin, delete, export.

The rules, written once for the CLI (`waymark user …`) and the admin page:
- Disabling ends every session (the session epoch moves) and revokes every API token at once;
  a disabled account cannot log in. Enabling lets the person log in again (new tokens needed).
- Deleting asks what happens to the maps the user owns: transferred to another user, or to
  the trash (archived at once, without the owner's e-mail, then purged with the archive).
  Their personal data goes: the account row, memberships and tokens; the history they wrote
  stays, anonymous ("deleted user").
- Export first: everything a user owns as map bundles plus a JSON of the account.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from waymark import jsonutil
from waymark.db.engine import Database
from waymark.db.models import (
    ApiToken,
    Change,
    Feature,
    Job,
    Map,
    Member,
    Upload,
    User,
    utcnow,
)
from waymark.errors import Conflict, Forbidden, Invalid, NotFound
from waymark.maps.exports import make_bundle
from waymark.maps.state import iso

MAP_FATES = ("transfer", "trash")


def require_admin(actor: Any) -> int:
    """The admin check of every admin route: 401 anonymous, 403 not an administrator."""
    uid = actor.require_user()
    if not actor.is_admin:
        raise Forbidden("this needs an administrator account", code="admin_required")
    return uid


def find_user(session: Session, who: str | int) -> User:
    """By e-mail (any case) or numeric id."""
    if isinstance(who, int) or str(who).isdigit():
        user = session.get(User, int(who))
    else:
        user = session.scalar(select(User).where(User.email == str(who).strip().lower()))
    if user is None:
        raise NotFound(f"no user {who}", code="user_not_found")
    return user


def _owned(session: Session, user_id: int) -> list[Map]:
    return list(session.scalars(select(Map).where(Map.owner_id == user_id).order_by(Map.id)))


def user_json(session: Session, user: User) -> dict[str, Any]:
    owned = session.scalar(select(func.count(Map.id)).where(
        Map.owner_id == user.id, Map.deleted_at.is_(None))) or 0
    tokens = session.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))) or 0
    return {"id": user.id, "email": user.email, "display_name": user.display_name,
            "is_admin": user.is_admin, "created_at": iso(user.created_at),
            "disabled_at": iso(user.disabled_at), "maps_owned": owned, "active_tokens": tokens}


def list_users(session: Session, q: str = "", limit: int = 50,
               offset: int = 0) -> list[dict[str, Any]]:
    query = select(User).order_by(User.id)
    q = (q or "").strip().lower()
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(func.lower(User.email).like(pattern, escape="\\"),
                                func.lower(User.display_name).like(pattern, escape="\\")))
    users = session.scalars(query.limit(min(max(limit, 1), 500)).offset(max(offset, 0)))
    return [user_json(session, u) for u in users]


def disable_user(session: Session, user: User) -> list[int]:
    """Disable the account; returns the ids of the maps it was a member of (their live
    connections re-check access)."""
    if user.disabled_at is None:
        now = utcnow()
        user.disabled_at = now
        user.password_changed_at = now  # every session started before now has ended
    session.execute(update(ApiToken).where(ApiToken.user_id == user.id,
                                           ApiToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    return list(session.scalars(select(Member.map_id).where(Member.user_id == user.id)))


def enable_user(session: Session, user: User) -> None:
    user.disabled_at = None


def set_admin(session: Session, user: User, is_admin: bool) -> None:
    if not is_admin and user.is_admin:
        others = session.scalar(select(func.count(User.id)).where(
            User.is_admin.is_(True), User.id != user.id, User.disabled_at.is_(None))) or 0
        if not others:
            raise Conflict("this is the last administrator", code="last_admin")
    user.is_admin = is_admin


def owned_map_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count(Map.id)).where(Map.owner_id == user.id)) or 0


def delete_user(db: Database, user_id: int, maps: str | None, to: str | int | None = None,
                *, archive_map: Any = None) -> dict[str, Any]:
    """Delete the account. `maps`: "transfer" (to `to`, an e-mail or id) or "trash"; required
    when the user owns maps. `archive_map(map_pk, public_id)` archives a trashed map at once
    (maps.retention.archive_map bound to the stores). Returns what was done."""
    with db.write() as s:
        user = s.get(User, user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        owned = _owned(s, user.id)
        if owned and maps not in MAP_FATES:
            raise Invalid(f"{user.email} owns {len(owned)} map(s): say whether they are "
                          "transferred to another user (maps=transfer, to=<e-mail>) or moved "
                          "to the trash (maps=trash)", details={"field": "maps",
                                                                "maps_owned": len(owned)})
        if user.is_admin and not s.scalar(select(func.count(User.id)).where(
                User.is_admin.is_(True), User.id != user.id)):
            raise Conflict("this is the last administrator", code="last_admin")
        report: dict[str, Any] = {"email": user.email, "maps": maps if owned else None,
                                  "transferred": [], "trashed": []}
        if owned and maps == "transfer":
            if to is None or to == "":
                raise Invalid("name the user who receives the maps", details={"field": "to"})
            heir = find_user(s, to)
            if heir.id == user.id or heir.disabled_at is not None:
                raise Invalid("the maps must go to another, active user", details={"field": "to"})
            for map_ in owned:
                _transfer(s, map_, heir.id)
                report["transferred"].append(map_.public_id)
            report["to"] = heir.email
        elif owned:
            now = utcnow()
            for map_ in owned:
                map_.deleted_at = map_.deleted_at or now
                report["trashed"].append(map_.public_id)
    for map_ in owned if maps == "trash" else ():
        if archive_map is None:
            raise RuntimeError("delete_user(maps='trash') needs archive_map")
        archive_map(map_.id, map_.public_id)
    with db.write() as s:
        _forget(s, user_id)
    return report


def _transfer(session: Session, map_: Map, heir_id: int) -> None:
    map_.owner_id = heir_id
    member = session.scalar(select(Member).where(Member.map_id == map_.id,
                                                 Member.user_id == heir_id))
    if member is None:
        session.add(Member(map_id=map_.id, user_id=heir_id, role="owner"))
    else:
        member.role = "owner"


def _forget(session: Session, user_id: int) -> None:
    """Remove the person; what others see of their past edits becomes anonymous."""
    session.execute(update(Change).where(Change.user_id == user_id).values(user_id=None))
    session.execute(update(Feature).where(Feature.updated_by == user_id).values(updated_by=None))
    session.execute(update(Upload).where(Upload.user_id == user_id).values(user_id=None))
    session.execute(update(Job).where(Job.user_id == user_id).values(user_id=None))
    session.execute(delete(Member).where(Member.user_id == user_id))
    session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
    session.execute(delete(User).where(User.id == user_id))


def export_user(db: Database, user_id: int) -> bytes:
    """A zip: account.json (the account, its tokens' names, memberships) and
    maps/<id>.json, a re-importable bundle of every map the user owns (trash included)."""
    buffer = io.BytesIO()
    with db.read() as s, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        user = s.get(User, user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        owned = _owned(s, user.id)
        tokens = s.scalars(select(ApiToken).where(ApiToken.user_id == user.id))
        members = s.execute(select(Map.public_id, Map.title, Member.role)
                            .join(Member, Member.map_id == Map.id)
                            .where(Member.user_id == user.id, Map.owner_id != user.id))
        account = {
            "kind": "waymark-account-export", "exported_at": iso(utcnow()),
            "account": {"id": user.id, "email": user.email, "display_name": user.display_name,
                        "is_admin": user.is_admin, "created_at": iso(user.created_at),
                        "password_changed_at": iso(user.password_changed_at),
                        "disabled_at": iso(user.disabled_at)},
            "api_tokens": [{"name": t.name, "prefix": t.prefix, "scope": t.scope,
                            "created_at": iso(t.created_at), "last_used_at": iso(t.last_used_at),
                            "revoked_at": iso(t.revoked_at)} for t in tokens],
            "maps_owned": [{"id": m.public_id, "title": m.title, "visibility": m.visibility,
                            "deleted_at": iso(m.deleted_at), "file": f"maps/{m.public_id}.json"}
                           for m in owned],
            "memberships": [{"map": pid, "title": title, "role": role}
                            for pid, title, role in members],
            "changes_written": s.scalar(select(func.count(Change.id))
                                        .where(Change.user_id == user.id)) or 0,
        }
        zf.writestr("account.json", jsonutil.dumpb(account))
        for map_ in owned:
            zf.writestr(f"maps/{map_.public_id}.json", jsonutil.dumpb(make_bundle(s, map_)))
    return buffer.getvalue()

