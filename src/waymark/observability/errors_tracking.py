"""Error tracking with sentry-sdk, on when WAYMARK_SENTRY_DSN is set.

One event per unhandled exception in a request (from Litestar's after_exception hook,
tagged with the request id, route and user id), plus uncaught exceptions in the process
(sentry's excepthook/threading integrations). Error *log lines* are not turned into
events (they become breadcrumbs), so an exception is never reported twice.

Nothing secret leaves the process: no default PII, no request bodies, no local variables
in stack frames, and `before_send` drops cookies, authorization/CSRF headers, query
strings and sensitive keys, and scrubs credentials out of messages and breadcrumbs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from waymark.errors import ApiError
from waymark.observability import metrics
from waymark.observability.logging import REDACTED, is_sensitive_key, scrub, scrub_text
from waymark.observability.request_observer import USER_ID_KEY

_SAFE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding", "accept-language",
                           "content-type", "content-length", "host", "x-request-id",
                           "x-forwarded-for", "x-forwarded-proto", "referer", "origin"})


def init_error_tracking(dsn: str, *, release: str, environment: str, commit: str = "") -> bool:
    """Start sentry-sdk for this process; False (and nothing started) without a DSN."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        # send_default_pii stays unset: that already means "no PII" (setting it is deprecated
        # since sentry-sdk 2.75, and a `data_collection` dict collects most things by default)
        include_local_variables=False,  # frames could hold passwords and tokens
        max_request_body_size="never",
        auto_enabling_integrations=False,  # no framework auto-capture: we capture once, here
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=None,
    )
    if commit:
        sentry_sdk.set_tag("commit", commit)
    return True


def is_expected(exc: BaseException) -> bool:
    """Errors the API answers on purpose (4xx, known 5xx): not bugs, not reported."""
    from litestar.exceptions import HTTPException  # the job worker does not load litestar

    return isinstance(exc, (HTTPException, ApiError))


def after_exception(report: bool) -> Callable[[Exception, dict[str, Any]], Awaitable[None]]:
    """Litestar after_exception hook: count unexpected exceptions, and report each once
    when `report` (the app's settings have WAYMARK_SENTRY_DSN)."""

    async def hook(exc: Exception, scope: dict[str, Any]) -> None:
        if is_expected(exc):
            return
        metrics.UNHANDLED_EXCEPTIONS.labels(exception=type(exc).__name__).inc()
        if report:
            capture_request_exception(exc, scope)

    return hook


def capture_request_exception(exc: BaseException, scope: dict[str, Any]) -> None:
    import sentry_sdk

    with sentry_sdk.new_scope() as sentry_scope:
        request_id = scope.get("waymark.request_id")
        if request_id:
            sentry_scope.set_tag("request_id", request_id)
        route = scope.get("path_template")
        if route:
            sentry_scope.set_tag("route", route)
            sentry_scope.set_tag("transaction", route)
            sentry_scope.set_transaction_name(route)
        user_id = scope.get(USER_ID_KEY)
        if user_id is not None:
            sentry_scope.set_user({"id": str(user_id)})
        sentry_scope.set_context("request", {"method": scope.get("method"), "route": route,
                                             "request_id": request_id})
        sentry_sdk.capture_exception(exc)


def capture_job_exception(exc: BaseException, **tags: str) -> None:
    """Report a failed background job (a no-op if sentry-sdk was not started)."""
    import sentry_sdk

    with sentry_sdk.new_scope() as sentry_scope:
        for key, value in tags.items():
            sentry_scope.set_tag(key, value)
        sentry_sdk.capture_exception(exc)


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: whatever an integration collected, secrets go."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items()
                                  if k.lower() in _SAFE_HEADERS}
        for key in ("cookies", "data", "query_string", "env"):
            request.pop(key, None)
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = scrub_text(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    if isinstance(event.get("logentry"), dict):
        event["logentry"] = scrub(event["logentry"])
    if isinstance(event.get("message"), str):
        event["message"] = scrub_text(event["message"])
    for key in ("extra", "contexts", "tags"):
        if isinstance(event.get(key), dict):
            event[key] = _scrub_mapping(event[key])
    extra = event.get("extra")
    if isinstance(extra, dict):
        extra.pop("sys.argv", None)  # command lines can carry --password
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict) and isinstance(crumbs.get("values"), list):
        crumbs["values"] = [before_breadcrumb(c, {}) for c in crumbs["values"]]
        crumbs["values"] = [c for c in crumbs["values"] if c]
    return event


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    if isinstance(crumb.get("message"), str):
        crumb["message"] = scrub_text(crumb["message"])
    data = crumb.get("data")
    if isinstance(data, dict):
        crumb["data"] = _scrub_mapping(data)
        if isinstance(crumb["data"].get("url"), str):
            crumb["data"]["url"] = crumb["data"]["url"].split("?", 1)[0]
        crumb["data"].pop("http.query", None)
    return crumb


def _scrub_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key in ("request_id", "route", "transaction", "release", "environment", "commit"):
            out[key] = value
        elif isinstance(key, str) and is_sensitive_key(key):
            out[key] = REDACTED
        else:
            out[key] = scrub(value)
    return out


__all__ = ["after_exception", "before_send", "capture_job_exception", "init_error_tracking"]
