"""Password reset by e-mail: the API (request a link, use it) and the two pages.

`POST /api/v1/auth/password-reset {"email"}` always answers 202 with the same message, for
any well-formed address (no account enumeration, no timing difference: the mail is made and
sent by a job). Throttled per IP (`reset`) and per address (`reset_address`: over it, no
mail but the same answer). Without WAYMARK_SMTP_URL: 403 `mail_not_configured` (like a
closed sign-up: this server refuses, it is not a passing outage), and the page says to ask
an administrator.
"""

from __future__ import annotations

import hashlib
from typing import Any

from anyio import to_thread
from litestar import Request, get, post
from litestar.response import Redirect, Template

from waymark.accounts.actor import Actor
from waymark.accounts.reset import reset_password
from waymark.accounts.service import normalise_email
from waymark.api.account_routes import _require_json
from waymark.errors import ApiError
from waymark.pages import render_page
from waymark.ratelimit.limiter import RateLimiter
from waymark.web import Services, json_object, threaded

SENT = ("If an account uses this address, a link to choose a new password is on its way. "
        "Check your mail (and the spam folder); the link works once, for {minutes} minutes.")


def _mail_configured(svc: Services) -> None:
    if not svc.settings.smtp_url:
        raise ApiError("this server cannot send e-mail: ask its administrator to reset your "
                       "password", code="mail_not_configured", status=403)


@post("/api/v1/auth/password-reset", status_code=202, tags=["auth"],
      before_request=_require_json)
async def request_reset(services: Services, limiter: RateLimiter, data: Any) -> dict[str, Any]:
    """Mail a single-use link to choose a new password (same answer for any address)."""
    _mail_configured(services)
    email = normalise_email(str(json_object(data).get("email", "")))
    address = "a:" + hashlib.sha256(email.encode()).hexdigest()[:32]
    decision = await limiter.hit("reset_address", address)
    if decision is None or decision.allowed:
        await to_thread.run_sync(services.huey.password_reset_mail_task, email)
    return {"message": SENT.format(minutes=services.settings.password_reset_minutes)}


@post("/api/v1/auth/password-reset/confirm", status_code=204, tags=["auth"],
      before_request=_require_json)
async def confirm_reset(request: Request, services: Services, data: Any) -> None:
    """Set a new password with the token from the mailed link; every session ends."""
    body = json_object(data)

    def work() -> None:
        with services.db.write() as s:
            reset_password(s, str(body.get("token", "")), str(body.get("password", "")))

    await to_thread.run_sync(work)
    request.clear_session()


@get("/forgot-password", include_in_schema=False)
@threaded
def forgot_page(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if actor.is_authenticated:
        return Redirect("/dashboard")
    return render_page(request, services, actor, "password_reset.html", mode="forgot",
                       mail=bool(services.settings.smtp_url))


@get("/reset-password", include_in_schema=False)
@threaded
def reset_page(request: Request, services: Services, actor: Actor) -> Template:
    return render_page(request, services, actor, "password_reset.html", mode="reset", mail=True)


ROUTES = [request_reset, confirm_reset, forgot_page, reset_page]
