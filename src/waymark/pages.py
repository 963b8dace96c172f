"""Server-rendered pages. For now a home page listing public maps; the editor comes later."""

from __future__ import annotations

from html import escape

from litestar import Request, Response, get

from waymark.accounts.actor import Actor
from waymark.maps.service import list_maps
from waymark.web import threaded


@get("/", include_in_schema=False)
@threaded
def home(request: Request) -> Response:
    svc = request.app.state.services
    q = request.query_params.get("q", "")[:200]
    with svc.db.read() as s:
        maps = list_maps(s, Actor(), "public", q)
    items = "".join(
        f'<li><a href="/api/v1/maps/{escape(m["id"])}">{escape(m["title"])}</a> '
        f'<small>by {escape(m["owner"]["display_name"])}</small></li>' for m in maps)
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Waymark</title>
<style>body{{font:16px system-ui,sans-serif;margin:2rem;max-width:50rem}}</style></head><body>
<h1>Waymark</h1><p>Self-hosted collaborative maps.</p>
<form method="get" action="/"><label>Search public maps <input name="q" value="{escape(q)}">
</label> <button>Search</button></form>
<h2>Public maps</h2><ul>{items or "<li>No public maps yet.</li>"}</ul>
<p><a href="/api/docs">API reference</a> · <a href="/readyz">Status</a></p></body></html>"""
    return Response(html, media_type="text/html")


ROUTES = [home]
