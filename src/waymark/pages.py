"""Server-rendered pages (Jinja2). The JavaScript bundle adds the interactive parts.

Pages carry their configuration in data-* attributes and <meta> tags (map id, CSRF token,
basemap), never in inline scripts, so a strict Content-Security-Policy can apply.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from litestar import Request, get, post
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from waymark.accounts.actor import Actor
from waymark.accounts.passwords import MIN_LENGTH
from waymark.errors import NotFound
from waymark.maps.access import load_map
from waymark.maps.service import list_maps
from waymark.maps.state import map_json
from waymark.web import Services, threaded
from waymark.web_assets import asset_url

TEMPLATES = Path(__file__).resolve().parent / "templates"
NO_STORE = {"Cache-Control": "no-store"}


def _configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals["asset"] = asset_url


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure)


def _session(request: Request) -> dict[str, Any]:
    data = request.scope.get("session")
    return data if isinstance(data, dict) else {}


def _svc(request: Request) -> Services:
    return request.app.state.services


def _page(request: Request, actor: Actor, name: str, status: int = 200, **context: Any) -> Template:
    settings = _svc(request).settings
    user = {"id": actor.user_id, "name": actor.display_name or actor.email} \
        if actor.user_id is not None else None
    return Template(template_name=name, status_code=status, headers=NO_STORE, context={
        "user": user, "csrf": _session(request).get("csrf", "") if user else "",
        "allow_signup": settings.allow_signup, "basemap_url": settings.basemap_url,
        "basemap_attribution": settings.basemap_attribution, "path": request.url.path,
        **context})


@get("/", include_in_schema=False)
@threaded
def home(request: Request, actor: Actor) -> Template:
    q = request.query_params.get("q", "")[:200]
    with _svc(request).db.read() as s:
        maps = list_maps(s, Actor(), "public", q)
    return _page(request, actor, "home.html", maps=maps, q=q)


@get("/login", include_in_schema=False)
async def login_page(request: Request, actor: Actor) -> Template | Redirect:
    if actor.is_authenticated:
        return Redirect("/dashboard")
    return _page(request, actor, "auth.html", mode="login")


@get("/signup", include_in_schema=False)
async def signup_page(request: Request, actor: Actor) -> Template | Redirect:
    if actor.is_authenticated:
        return Redirect("/dashboard")
    return _page(request, actor, "auth.html", mode="signup", min_password=MIN_LENGTH)


@get("/logout", include_in_schema=False)
async def logout_page(request: Request, actor: Actor) -> Template | Redirect:
    if not actor.is_authenticated:
        return Redirect("/")
    return _page(request, actor, "logout.html")


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request) -> Redirect:
    """A plain form post; the CSRF token travels as a form field and must match the session."""
    form = await request.form()
    expected = _session(request).get("csrf", "")
    sent = str(form.get("csrf", ""))
    if expected and sent and hmac.compare_digest(sent, expected):
        request.clear_session()
        return Redirect("/", status_code=303)
    return Redirect("/logout", status_code=303)


@get("/dashboard", include_in_schema=False)
@threaded
def dashboard(request: Request, actor: Actor) -> Template | Redirect:
    if not actor.is_authenticated:
        return Redirect("/login?next=/dashboard")
    with _svc(request).db.read() as s:
        lists = {scope: list_maps(s, actor, scope, limit=200) for scope in ("mine", "shared", "trash")}
    return _page(request, actor, "dashboard.html", **lists)


def _map_page(request: Request, actor: Actor, map_id: str, template: str) -> Template:
    try:
        with _svc(request).db.read() as s:
            map_, role = load_map(s, map_id, actor)
            info = map_json(map_, role)
    except NotFound:
        return _page(request, actor, "404.html", status=404, what="map")
    can_edit = role in ("owner", "editor") and template == "map.html"
    return _page(request, actor, template, map=info, role=role, can_edit=can_edit)


@get("/m/{map_id:str}", include_in_schema=False)
@threaded
def map_page(request: Request, actor: Actor, map_id: str) -> Template:
    return _map_page(request, actor, map_id, "map.html")


@get("/m/{map_id:str}/embed", include_in_schema=False)
@threaded
def embed_page(request: Request, actor: Actor, map_id: str) -> Template:
    return _map_page(request, actor, map_id, "embed.html")


ROUTES = [home, login_page, signup_page, logout_page, logout, dashboard, map_page, embed_page]
