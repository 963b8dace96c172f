"""Server-side sessions through Litestar stores, with a fresh session id at every log-in.

Litestar keeps the id from the incoming cookie; a log-in must not (session fixation), so
the handler marks the request and this backend hands out a new id for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Empty, Message, ScopeSession

ROTATE_KEY = "waymark.rotate_session"
NEW_ID_KEY = "waymark.new_session_id"
COOKIE = "waymark_session"


class RotatingSessionBackend(ServerSideSessionBackend):
    def get_session_id(self, connection: ASGIConnection) -> str:
        scope = connection.scope
        if scope.get(ROTATE_KEY):  # type: ignore[typeddict-item]
            new_id = scope.get(NEW_ID_KEY)  # type: ignore[typeddict-item]
            if not new_id:
                new_id = self.generate_session_id()
                scope[NEW_ID_KEY] = new_id  # type: ignore[typeddict-unknown-key]
            return new_id
        return super().get_session_id(connection)

    async def store_in_message(self, scope_session: ScopeSession, message: Message,
                               connection: ASGIConnection) -> None:
        # A visitor without a session who did not start one gets no cookie and no store entry
        # (Litestar would otherwise create an empty session for every cookieless request).
        if scope_session is not Empty and not scope_session and not old_session_id(connection):
            return
        await super().store_in_message(scope_session, message, connection)


@dataclass
class SessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend  # type: ignore[assignment]


def old_session_id(connection: ASGIConnection) -> str | None:
    sid = connection.cookies.get(COOKIE)
    return sid if sid and sid != "null" else None
