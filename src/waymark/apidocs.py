"""A browsable API reference rendered on the server from the OpenAPI schema.

No third-party viewer (they load scripts from CDNs); the JSON schema itself is at
/api/openapi.json for tools.
"""

from __future__ import annotations

from html import escape

from litestar import Request, Response, get

METHODS = ("get", "post", "put", "patch", "delete")


@get("/api/docs", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    schema = request.app.openapi_schema.to_schema()
    rows = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            summary = escape(op.get("summary") or "")
            desc = escape(op.get("description") or "").replace("\n", "<br>")
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code>"
                        f"</td><td><b>{summary}</b><br>{desc}</td></tr>")
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Waymark API</title><meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px system-ui,sans-serif;margin:2rem;max-width:75rem}}td{{vertical-align:top;
padding:.4rem;border-bottom:1px solid #ddd}}code{{white-space:nowrap}}</style></head><body>
<h1>Waymark API {escape(schema.get("info", {}).get("version", ""))}</h1>
<p>Machine-readable schema: <a href="/api/openapi.json">/api/openapi.json</a>.
Authenticate with a session cookie (writes need the <code>X-CSRF-Token</code> header) or
<code>Authorization: Bearer &lt;token&gt;</code>. Errors are
<code>{{"error": {{"code", "message", "details"}}}}</code>.</p>
<table>{''.join(rows)}</table></body></html>"""
    return Response(html, media_type="text/html")
