"""One error format for the whole API: {"error": {"code", "message", "details"}}.

Domain code raises ApiError (or a subclass); the app factory installs the handlers that turn
it, validation failures and unexpected exceptions into that shape with the right status.
"""

from __future__ import annotations

from typing import Any


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
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


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


class TooLarge(ApiError):
    status_code = 413
    code = "too_large"


class Unavailable(ApiError):
    """A shared service (the database during a fail-over) cannot answer now: retry soon."""

    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}
