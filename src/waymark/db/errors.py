"""Which database errors mean "the database cannot serve us right now".

During a PostgreSQL fail-over the app sees connections dropped, the server shutting down or
not yet accepting connections, and writes refused by a primary just demoted to a replica.
None of those is a bug: the request is answered 503 with Retry-After (app.py), a job is
left for another attempt. Everything else stays an error.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from waymark.errors import Unavailable

READ_ONLY_TRANSACTION = "25006"  # a write sent to a replica (a demoted primary)
# class 08: connection exceptions; 57P01-03: admin/crash shutdown, cannot connect now
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")
_SQLITE_BUSY = ("database is locked", "database is busy")

RETRY_AFTER_SECONDS = 2


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database is unreachable or refusing writes for now."""
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True  # the pool could not get a (live) connection in time
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if state:
        return state == READ_ONLY_TRANSACTION or state.startswith(_UNAVAILABLE_STATES)
    if isinstance(exc, sa_exc.OperationalError):
        text = str(exc.orig).lower()
        # psycopg connection failures carry no SQLSTATE; SQLite says "locked" when busy
        return exc.orig.__class__.__module__.startswith("psycopg") or any(
            busy in text for busy in _SQLITE_BUSY)
    return False


def database_unavailable_error() -> Unavailable:
    """The answer to a request that met an unavailable database."""
    return Unavailable("the database is unavailable (fail-over in progress?); retry shortly",
                       code="database_unavailable",
                       details={"retry_after": RETRY_AFTER_SECONDS},
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
