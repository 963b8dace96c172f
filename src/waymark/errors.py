"""One error format for the whole API: {"error": {"code", "message", "details"}}.

Domain code raises ApiError (or a subclass); the app factory installs the handlers that turn
it, validation failures and unexpected exceptions into that shape with the right status.
Every body is built here: `error_body` (HTTP, also the ASGI layers through `send_error`),
`ws_error` (the websocket's {"type": "error", ...} frames); openapi.py documents
`ERROR_FIELDS`.
"""

from __future__ import annotations

from typing import Any

from waymark import jsonutil

#: The members of every error object and their JSON types (openapi.py documents them).
ERROR_FIELDS = {"code": "string", "message": "string", "details": "object"}


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status_code = status
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(ApiError):
    status_code = 412
    code = "version_mismatch"


class Invalid(ApiError):
    status_code = 422
    code = "invalid"


class Unavailable(ApiError):
    """A shared service (the database during a fail-over) cannot answer now: retry soon."""

    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The HTTP error body."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def internal_error_body() -> dict[str, Any]:
    """The body of an unexpected failure: nothing about its cause reaches the client."""
    return error_body("internal_error", "internal server error")


def ws_error(code: str, message: str, details: dict[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
    """A websocket error frame: {"type": "error", **extra (ref, status), "error": {...}}."""
    return {"type": "error", **extra, **error_body(code, message, details)}


def ws_api_error(exc: ApiError, **extra: Any) -> dict[str, Any]:
    """`ws_error` of a raised ApiError."""
    return ws_error(exc.code, exc.message, exc.details, **extra)


async def send_error(send: Any, status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with an error body from a plain ASGI layer (before the framework's handlers)."""
    raw = jsonutil.dumpb(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        (b"cache-control", b"no-store"), *(headers or ())]})
    await send({"type": "http.response.body", "body": raw})


async def send_api_error(send: Any, exc: ApiError) -> None:
    """`send_error` of a raised ApiError, with its status and headers."""
    await send_error(send, exc.status_code, exc.body(),
                     [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()])
