"""Password reset by e-mail: single-use, expiring links whose tokens are stored hashed.

The request answers the same whether the address has an account or not; the mail job
(`send_reset_mail`, in the job worker) looks the address up, makes a token and sends the
link. The link carries the token in its fragment (`/reset-password#token=…`), so it never
reaches server or proxy logs. Using it sets the new password, ends every session of the
account (the session epoch moves) and spends every other outstanding link of the account.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from waymark.accounts.passwords import check_password_rules, hash_password
from waymark.accounts.service import hash_token
from waymark.db.engine import Database
from waymark.db.models import PasswordReset, User, as_utc, utcnow
from waymark.errors import ApiError
from waymark.settings import Settings

log = logging.getLogger("waymark.accounts")


class InvalidResetLink(ApiError):
    status_code = 400
    code = "invalid_reset_token"


def create_reset(session: Session, email: str, minutes: int,
                 now: datetime | None = None) -> tuple[User, str] | None:
    """A new link for an active account with this address, else None. Returns the raw token
    (only its SHA-256 is stored)."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.disabled_at is not None:
        return None
    now = now or utcnow()
    raw = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=hash_token(raw), created_at=now,
                              expires_at=now + timedelta(minutes=minutes)))
    session.flush()
    return user, raw


def reset_password(session: Session, raw: str, new_password: str,
                   now: datetime | None = None) -> User:
    """Spend the link and set the password; every session of the account ends."""
    now = now or utcnow()
    link = session.scalar(select(PasswordReset).where(
        PasswordReset.token_hash == hash_token(raw or "")).with_for_update())
    if link is None or link.used_at is not None or as_utc(link.expires_at) <= now:
        raise InvalidResetLink("this reset link is invalid, already used or expired: "
                               "ask for a new one")
    user = session.get(User, link.user_id)
    if user is None or user.disabled_at is not None:
        raise InvalidResetLink("this reset link is invalid, already used or expired: "
                               "ask for a new one")
    check_password_rules(new_password or "", user.email)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now  # sessions started before now have ended
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id,
                                                PasswordReset.used_at.is_(None))
                    .values(used_at=now))
    return user


def reset_mail(settings: Settings, raw: str) -> tuple[str, str]:
    """(subject, text) of the mail with the link."""
    link = f"{settings.public_url.rstrip('/')}/reset-password#token={raw}"
    text = (f"Someone (hopefully you) asked to reset the password of your Waymark account at "
            f"{settings.public_url}.\n\nChoose a new password here:\n\n{link}\n\n"
            f"The link works once, for {settings.password_reset_minutes} minutes. Using it "
            "logs you out everywhere.\n\nIf you did not ask for this, ignore this mail: your "
            "password stays as it is.\n")
    return "Reset your Waymark password", text


def send_reset_mail(settings: Settings, db: Database, email: str) -> str:
    """The mail job: "sent", or "no_account" (nothing sent). SMTP errors propagate (the job
    retries) after being counted as "failed"."""
    from waymark.mail import send_mail
    from waymark.observability.metrics import PASSWORD_RESET_MAILS

    with db.write() as s:
        made = create_reset(s, email, settings.password_reset_minutes)
        address = made[0].email if made else None
    if made is None:
        PASSWORD_RESET_MAILS.labels(outcome="no_account").inc()
        return "no_account"
    subject, text = reset_mail(settings, made[1])
    try:
        if settings.smtp_target is None:
            raise RuntimeError("no WAYMARK_SMTP_URL: Waymark sends no mail")
        send_mail(settings.smtp_target, settings.mail_from, address or email, subject, text)
    except Exception as exc:
        PASSWORD_RESET_MAILS.labels(outcome="failed").inc()
        log.warning("password-reset mail not sent: %s: %s", type(exc).__name__, exc)
        raise
    PASSWORD_RESET_MAILS.labels(outcome="sent").inc()
    return "sent"
