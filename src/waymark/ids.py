"""Public identifiers: short, unguessable, URL-safe."""

import secrets
import uuid

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def new_public_id(length: int = 10) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_uuid() -> str:
    return str(uuid.uuid4())


MAX_ROW_ID = 2**63 - 1  # the largest integer key SQLite and PostgreSQL BIGINT can hold


def is_row_id(value: int) -> bool:
    """Whether an integer from a URL can be a row id at all (else: not found, not a 500
    from the database driver refusing the number)."""
    return 0 < value <= MAX_ROW_ID


def clamp_to_row_range(value: int) -> int:
    """An integer from a URL made safe to bind as a 64-bit SQL parameter (same meaning for
    comparisons and offsets: nothing lies beyond the range anyway)."""
    return max(-MAX_ROW_ID, min(value, MAX_ROW_ID))


def process_name() -> str:
    """This process among the nodes: ``host:pid`` (who claimed a job or a periodic run)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
