"""argon2id password hashing and the password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from waymark.errors import Invalid

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_LENGTH = 10
MAX_LENGTH = 1024
# A dummy hash so unknown e-mails cost as much time as wrong passwords (no user enumeration).
_DUMMY = _hasher.hash("waymark-dummy-password")


def check_password_rules(password: str, email: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must be at least {MIN_LENGTH} characters",
                      details={"field": "password"})
    if len(password) > MAX_LENGTH:
        raise Invalid(f"password must be at most {MAX_LENGTH} characters", details={"field": "password"})
    if email and password.lower() == email.lower():
        raise Invalid("password must not be your e-mail address", details={"field": "password"})
    if len(set(password)) < 4:
        raise Invalid("password is too repetitive", details={"field": "password"})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
