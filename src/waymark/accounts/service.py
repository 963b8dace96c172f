"""Account operations: sign up, authenticate, API tokens. No HTTP here."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark.accounts.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from waymark.db.models import ApiToken, User, utcnow
from waymark.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from waymark.ids import is_row_id

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "wmk_"  # noqa: S105  # nosec B105 - the public prefix of API tokens, not a secret
SCOPES = ("read", "write")


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Invalid("email is not a valid e-mail address", details={"field": "email"})
    return email


def create_user(session: Session, email: str, password: str, display_name: str = "",
                *, is_admin: bool = False) -> User:
    email = normalise_email(email)
    check_password_rules(password, email)
    display_name = (display_name or "").strip() or email.split("@", 1)[0]
    if len(display_name) > 100:
        raise Invalid("display_name must be at most 100 characters", details={"field": "display_name"})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("an account with this e-mail already exists", code="email_taken",
                       details={"field": "email"})
    user = User(email=email, display_name=display_name, password_hash=hash_password(password),
                is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if not verify_password(user.password_hash if user else None, password or ""):
        raise Unauthorized("wrong e-mail or password", code="invalid_credentials")
    assert user is not None
    if user.disabled_at is not None:
        raise Forbidden("this account is disabled; ask an administrator", code="account_disabled")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise Unauthorized("current password is wrong", code="invalid_credentials")
    set_password(user, new)


def set_password(user: User, new: str) -> None:
    """A new password; every session that user had ends (they began before the change)."""
    check_password_rules(new, user.email)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(session: Session, user: User, name: str, scope: str) -> tuple[ApiToken, str]:
    """Returns the row and the raw token; the raw token is shown once and never stored."""
    if scope not in SCOPES:
        raise Invalid("scope must be read or write", details={"field": "scope"})
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid("name is required (at most 100 characters)", details={"field": "name"})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=raw[:12], token_hash=hash_token(raw),
                     scope=scope)
    session.add(token)
    session.flush()
    return token, raw


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                       ApiToken.revoked_at.is_(None))
                                .order_by(ApiToken.id)))


def revoke_token(session: Session, user: User, token_id: int) -> None:
    token = session.get(ApiToken, token_id) if is_row_id(token_id) else None
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound("token not found")
    token.revoked_at = datetime.now(UTC)
