"""Public identifiers: short, unguessable, URL-safe."""

import secrets
import uuid

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def new_public_id(length: int = 10) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_uuid() -> str:
    return str(uuid.uuid4())
