"""Who is making this request: anonymous, a session user, or an API token.

Cookie sessions must prove intent on writes (CSRF): the session holds a random token that
pages and API clients echo in the X-CSRF-Token header. Bearer tokens need no CSRF check
(browsers never attach them by themselves) but carry a scope: read tokens cannot write.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from waymark.accounts.service import token_user
from waymark.db.models import User
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
    return user.password_changed_at.replace(tzinfo=timezone.utc).timestamp() \
        if user.password_changed_at.tzinfo is None else user.password_changed_at.timestamp()


def token_needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """Record token use at most once a minute, so reads do not turn into writes."""
    if last_used_at is None:
        return True
    if last_used_at.tzinfo is None:
        last_used_at = last_used_at.replace(tzinfo=timezone.utc)
    return now - last_used_at > TOKEN_TOUCH_INTERVAL


def resolve_actor(db_session: Session, *, method: str, authorization: str | None,
                  session_data: dict | None, csrf_header: str | None) -> Actor:
    """Authenticate the request. Raises 401 for a bad token and 403 for a failed CSRF check."""
    if authorization:
        scheme, _, raw = authorization.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
        token = token_user(db_session, raw.strip())
        if token is None:
            raise Unauthorized("API token is invalid or revoked", code="invalid_token")
        user = token.user
        return Actor(user.id, user.email, user.display_name, "token", token.scope, token.id,
                     touch_token=token_needs_touch(token.last_used_at, datetime.now(timezone.utc)))
    if not session_data or "uid" not in session_data:
        return ANONYMOUS
    user = db_session.get(User, session_data["uid"])
    if user is None or session_data.get("epoch") != session_epoch(user):
        return ANONYMOUS  # user deleted or password changed since log-in: session ended
    if method not in SAFE_METHODS:
        expected = session_data.get("csrf", "")
        if not csrf_header or not expected or not hmac.compare_digest(csrf_header, expected):
            raise Forbidden("missing or wrong X-CSRF-Token header", code="csrf_failed")
    return Actor(user.id, user.email, user.display_name, "session", "write")
