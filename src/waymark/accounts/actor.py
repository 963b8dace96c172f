"""Who is making this request: anonymous, a session user, or an API token.

Cookie sessions must prove intent on writes (CSRF): the session holds a random token that
pages and API clients echo in the X-CSRF-Token header. Bearer tokens need no CSRF check
(browsers never attach them by themselves) but carry a scope: read tokens cannot write.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from waymark.accounts.service import TOKEN_PREFIX, hash_token
from waymark.db.models import User, as_utc
from waymark.errors import Forbidden, Unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Actor:
    user_id: int | None = None
    email: str = ""
    display_name: str = ""
    via: str = "anonymous"  # anonymous | session | token
    scope: str = "write"  # token scope; sessions can always write
    token_id: int | None = None
    touch_token: bool = False  # last_used_at is stale: the caller records this use
    is_admin: bool = False  # may administer accounts (admin/users.py)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def require_user(self) -> int:
        if self.user_id is None:
            raise Unauthorized("log in or send an API token", code="login_required")
        return self.user_id

    def require_write(self) -> int:
        uid = self.require_user()
        if self.scope != "write":
            raise Forbidden("this API token has read scope only", code="insufficient_scope")
        return uid


ANONYMOUS = Actor()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def session_epoch(user: User) -> float:
    return _epoch(user.password_changed_at)


def _epoch(password_changed_at: datetime | str) -> float:
    """When the password last changed, as the float stored in the session at log-in."""
    return as_utc(_as_datetime(password_changed_at)).timestamp()


def _as_datetime(value: datetime | str) -> datetime:
    # A raw SQLite read hands back the stored text; the ORM and PostgreSQL a datetime.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def token_needs_touch(last_used_at: datetime | str | None, now: datetime) -> bool:
    """Record token use at most once a minute, so reads do not turn into writes."""
    if last_used_at is None:
        return True
    return now - as_utc(_as_datetime(last_used_at)) > TOKEN_TOUCH_INTERVAL


# Two point lookups in plain SQL with named parameters, so the same text runs through a
# SQLAlchemy session and through Database.peek (SQLite, on the event loop, no ORM).
# A disabled account's tokens and sessions answer as if they did not exist.
TOKEN_SQL = ("SELECT t.id, t.scope, t.last_used_at, u.id, u.email, u.display_name, u.is_admin "  # noqa: S105  # nosec B105 - SQL, not a password
             "FROM api_tokens t JOIN users u ON u.id = t.user_id "
             "WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL "
             "AND u.disabled_at IS NULL")
USER_SQL = ("SELECT id, email, display_name, password_changed_at, is_admin FROM users "
            "WHERE id = :uid AND disabled_at IS NULL")

Fetch = Callable[[str, dict[str, Any]], Any]  # (sql, params) -> first row or None


def session_fetch(db_session: Session) -> Fetch:
    return lambda sql, params: db_session.execute(text(sql), params).first()


def resolve_actor(source: Session | Fetch, *, method: str, authorization: str | None,
                  session_data: dict | None, csrf_header: str | None) -> Actor:
    """Authenticate the request. Raises 401 for a bad token and 403 for a failed CSRF check."""
    fetch = session_fetch(source) if isinstance(source, Session) else source
    if authorization:
        scheme, _, raw = authorization.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw:
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
        row = fetch(TOKEN_SQL, {"token_hash": hash_token(raw)}) \
            if raw.startswith(TOKEN_PREFIX) else None
        if row is None:
            raise Unauthorized("API token is invalid or revoked", code="invalid_token")
        token_id, scope, last_used_at, user_id, email, display_name, is_admin = row
        return Actor(user_id, email, display_name, "token", scope, token_id,
                     touch_token=token_needs_touch(last_used_at, datetime.now(UTC)),
                     is_admin=bool(is_admin))
    if not session_data or "uid" not in session_data:
        return ANONYMOUS
    user = fetch(USER_SQL, {"uid": session_data["uid"]})
    if user is None or session_data.get("epoch") != _epoch(user[3]):
        return ANONYMOUS  # user deleted or password changed since log-in: session ended
    if method not in SAFE_METHODS:
        expected = session_data.get("csrf", "")
        if not csrf_header or not expected or not hmac.compare_digest(csrf_header, expected):
            raise Forbidden("missing or wrong X-CSRF-Token header", code="csrf_failed")
    return Actor(user[0], user[1], user[2], "session", "write", is_admin=bool(user[4]))
