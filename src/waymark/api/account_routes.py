"""/api/v1/auth and /api/v1/tokens: sign up, log in, log out, password, API tokens."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Request, delete, get, post

from waymark.accounts import service
from waymark.accounts.actor import Actor, new_csrf_token, session_epoch
from waymark.accounts.sessions import ROTATE_KEY, old_session_id
from waymark.db.models import User
from waymark.errors import Forbidden, Invalid
from waymark.maps.state import iso
from waymark.web import Services, json_object, threaded


def user_json(user: User, csrf: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user.id, "email": user.email, "display_name": user.display_name,
                           "created_at": iso(user.created_at)}
    if csrf is not None:
        out["csrf_token"] = csrf
    return out


def _require_json(request: Request) -> None:
    """Log-in and sign-up have no session yet, so no CSRF token: a JSON content type (which a
    cross-site form cannot send without a CORS preflight) is the proof of intent instead.

    Runs as the handlers' before_request hook: before Litestar parses the body, so a form
    post gets 415 and not a 400 "JSON is malformed"."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Invalid("send a JSON body with Content-Type: application/json",
                      code="unsupported_media_type", status=415)


async def _start_session(request: Request, user: User) -> str:
    old = old_session_id(request)
    if old:
        await request.app.stores.get("sessions").delete(old)
    request.scope[ROTATE_KEY] = True  # type: ignore[typeddict-unknown-key]
    csrf = new_csrf_token()
    request.set_session({"uid": user.id, "csrf": csrf, "epoch": session_epoch(user)})
    return csrf


@post("/api/v1/auth/signup", status_code=201, tags=["auth"], before_request=_require_json)
async def signup(request: Request, services: Services, data: Any) -> dict[str, Any]:
    """Create an account and log in."""
    _require_json(request)
    body = json_object(data)
    if not services.settings.allow_signup:
        raise Forbidden("sign-up is closed on this server", code="signup_closed")

    def work() -> User:
        with services.db.write() as s:
            return service.create_user(s, str(body.get("email", "")), str(body.get("password", "")),
                                       str(body.get("display_name", "")))

    user = await to_thread.run_sync(work)
    return user_json(user, await _start_session(request, user))


@post("/api/v1/auth/login", status_code=200, tags=["auth"], before_request=_require_json)
async def login(request: Request, services: Services, data: Any) -> dict[str, Any]:
    _require_json(request)
    body = json_object(data)

    def work() -> User:
        with services.db.write() as s:
            return service.authenticate(s, str(body.get("email", "")), str(body.get("password", "")))

    user = await to_thread.run_sync(work)
    return user_json(user, await _start_session(request, user))


@post("/api/v1/auth/logout", status_code=204, tags=["auth"])
async def logout(request: Request, actor: Actor) -> None:
    """End the session server-side (the stored session is deleted, not just the cookie)."""
    request.clear_session()


@get("/api/v1/auth/me", tags=["auth"])
@threaded
def me(request: Request, services: Services, actor: Actor) -> dict[str, Any]:
    uid = actor.require_user()
    with services.db.read() as s:
        user = s.get(User, uid)
    csrf = None
    if actor.via == "session":
        csrf = request.session.get("csrf")
    return {**user_json(user, csrf), "via": actor.via, "scope": actor.scope}


@post("/api/v1/auth/password", status_code=204, tags=["auth"])
async def change_password(request: Request, services: Services, actor: Actor, data: Any) -> None:
    """Change the password; every other session of this user ends, this one is renewed."""
    uid = actor.require_write()
    if actor.via != "session":
        raise Forbidden("change the password from a logged-in session", code="session_required")
    body = json_object(data)

    def work() -> User:
        with services.db.write() as s:
            user = s.get(User, uid)
            service.change_password(s, user, str(body.get("current_password", "")),
                                    str(body.get("new_password", "")))
            return user

    user = await to_thread.run_sync(work)
    await _start_session(request, user)


def token_json(token: Any) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix, "scope": token.scope,
            "created_at": iso(token.created_at), "last_used_at": iso(token.last_used_at)}


@get("/api/v1/tokens", tags=["tokens"])
@threaded
def list_tokens(services: Services, actor: Actor) -> list[dict[str, Any]]:
    uid = actor.require_user()
    with services.db.read() as s:
        return [token_json(t) for t in service.list_tokens(s, s.get(User, uid))]


@post("/api/v1/tokens", status_code=201, tags=["tokens"])
@threaded
def create_token(services: Services, actor: Actor, data: Any) -> dict[str, Any]:
    """Create an API token. The token itself is in this response only; store it now."""
    uid = actor.require_write()
    if actor.via == "token":
        raise Forbidden("API tokens cannot create tokens; use a logged-in session",
                        code="session_required")
    body = json_object(data)
    with services.db.write() as s:
        token, raw = service.create_token(s, s.get(User, uid), str(body.get("name", "")),
                                          str(body.get("scope", "read")))
        return {**token_json(token), "token": raw}


@delete("/api/v1/tokens/{token_id:int}", status_code=204, tags=["tokens"])
@threaded
def revoke_token(services: Services, actor: Actor, token_id: int) -> None:
    uid = actor.require_write()
    with services.db.write() as s:
        service.revoke_token(s, s.get(User, uid), token_id)


ROUTES = [signup, login, logout, me, change_password, list_tokens, create_token, revoke_token]
