"""Server-rendered pages (Jinja2). The JavaScript bundle adds the interactive parts.

Pages carry their configuration in data-* attributes and <meta> tags (map id, CSRF token,
basemap), never in inline scripts, so a strict Content-Security-Policy can apply.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Any

from litestar import Request, get, post
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.accounts.passwords import MIN_LENGTH
from waymark.errors import NotFound
from waymark.maps.access import load_map
from waymark.maps.service import list_maps
from waymark.maps.state import map_json
from waymark.security.headers import image_origins
from waymark.web import Services, threaded
from waymark.web_assets import asset_url

TEMPLATES = Path(__file__).resolve().parent / "templates"
NO_STORE = {"Cache-Control": "no-store"}


URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def linkify(text: str) -> Markup:
    """Plain text, escaped, with its http(s) addresses as links (map descriptions)."""
    parts, last = [], 0
    for match in URL.finditer(text or ""):
        parts.append(escape(text[last:match.start()]))
        parts.append(Markup('<a href="{0}" target="_blank" rel="noopener noreferrer nofollow">{0}</a>')
                     .format(match.group(0)))
        last = match.end()
    parts.append(escape((text or "")[last:]))
    return Markup("").join(parts)


def _configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals["asset"] = asset_url
    engine.engine.filters["linkify"] = linkify


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure)


def _session(request: Request) -> dict[str, Any]:
    data = request.scope.get("session")
    return data if isinstance(data, dict) else {}


def _page(request: Request, services: Services, actor: Actor, name: str, status: int = 200,
          **context: Any) -> Template:
    settings = services.settings
    user = {"id": actor.user_id, "name": actor.display_name or actor.email,
            "is_admin": actor.is_admin} if actor.user_id is not None else None
    read_only = services.read_only.current()  # banner; editing disabled
    return Template(template_name=name, status_code=status, headers=NO_STORE, context={
        "user": user, "csrf": _session(request).get("csrf", "") if user else "",
        "read_only": read_only.message if read_only else "",
        "allow_signup": settings.allow_signup, "path": request.url.path, **context})


def basemaps_json(services: Services) -> str:
    """The basemap presets as the page's map reads them (data-basemaps)."""
    builtin = asset_url("basemap.pmtiles")
    presets = services.presets
    return jsonutil.dumps({"default": presets.default,
                           "presets": [b.client(builtin) for b in presets.items]})


@get("/", include_in_schema=False)
@threaded
def home(request: Request, services: Services, actor: Actor) -> Template:
    q = request.query_params.get("q", "")[:200]
    with services.db.read() as s:
        maps = list_maps(s, Actor(), "public", q, trash_days=services.settings.trash_days)
    return _page(request, services, actor, "home.html", maps=maps, q=q)


@get("/login", include_in_schema=False)
@threaded
def login_page(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if actor.is_authenticated:
        return Redirect("/dashboard")
    return _page(request, services, actor, "auth.html", mode="login")


@get("/signup", include_in_schema=False)
@threaded
def signup_page(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if actor.is_authenticated:
        return Redirect("/dashboard")
    return _page(request, services, actor, "auth.html", mode="signup", min_password=MIN_LENGTH)


@get("/logout", include_in_schema=False)
@threaded
def logout_page(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if not actor.is_authenticated:
        return Redirect("/")
    return _page(request, services, actor, "logout.html")


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
def dashboard(request: Request, services: Services, actor: Actor) -> Template | Redirect:
    if not actor.is_authenticated:
        return Redirect("/login?next=/dashboard")
    with services.db.read() as s:
        lists = {scope: list_maps(s, actor, scope, limit=200,
                                  trash_days=services.settings.trash_days)
                 for scope in ("mine", "shared", "trash")}
    return _page(request, services, actor, "dashboard.html", **lists)


def _map_page(request: Request, services: Services, actor: Actor, map_id: str,
              template: str) -> Template:
    try:
        with services.db.read() as s:
            map_, role = load_map(s, map_id, actor)
            info = map_json(map_, role)
    except NotFound:
        return _page(request, services, actor, "404.html", status=404, what="map")
    can_edit = role in ("owner", "editor") and template == "map.html" \
        and services.read_only.current() is None
    return _page(request, services, actor, template, map=info, role=role, can_edit=can_edit,
                 basemaps=basemaps_json(services),
                 basemap=services.presets.get(info["basemap"]).name,
                 image_origins=jsonutil.dumps(image_origins(services.presets)))


@get("/m/{map_id:str}", include_in_schema=False)
@threaded
def map_page(request: Request, services: Services, actor: Actor, map_id: str) -> Template:
    return _map_page(request, services, actor, map_id, "map.html")


@get("/m/{map_id:str}/embed", include_in_schema=False)
@threaded
def embed_page(request: Request, services: Services, actor: Actor, map_id: str) -> Template:
    return _map_page(request, services, actor, map_id, "embed.html")


render_page = _page  # for the pages of other packages (the admin page)

ROUTES = [home, login_page, signup_page, logout_page, logout, dashboard, map_page, embed_page]
