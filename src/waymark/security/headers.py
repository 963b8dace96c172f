"""Security headers on every HTTP response (pages, API, errors, 429s, static files).

The pages load one script bundle from /static and carry their configuration in data-*
attributes (see pages.py), so the CSP allows scripts from 'self' only: no 'unsafe-inline',
no eval. Styles keep 'unsafe-inline' because Leaflet and the presence panel set inline style
attributes; that does not open a script-injection path. Only the embed page may be framed
by other sites; every other response forbids framing (frame-ancestors 'none' + X-Frame-Options).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

EMBED_PATH = re.compile(r"^/m/[^/]+/embed/?$")
REFERRER_POLICY = b"strict-origin-when-cross-origin"


def _origin(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s) URL template, else None (same origin)."""
    parts = urlsplit(url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0")
                     .replace("{y}", "0").replace("{r}", ""))
    if parts.scheme in ("http", "https") and parts.netloc:
        host = parts.netloc.rsplit("@", 1)[-1]
        if "{s}" in url:  # subdomain template such as https://{s}.tile.example.org
            host = "*." + host.split(".", 1)[1]
        return f"{parts.scheme}://{host}"
    return None


def content_security_policy(basemap_url: str = "", frame_ancestors: str = "'none'") -> str:
    img = ["'self'", "data:", "blob:"]
    basemap = _origin(basemap_url)
    if basemap:
        img.append(basemap)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": " ".join(img),
        "connect-src": "'self'",  # CSP3: 'self' also matches ws:/wss: to this host
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


class SecurityHeadersMiddleware:
    """Plain ASGI middleware, outermost, so even responses that never reach a handler
    (rate-limited, 404, 413) carry the headers. A header a handler set itself is kept."""

    def __init__(self, app: Any, basemap_url: str = "") -> None:
        self.app = app
        common = [(b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", REFERRER_POLICY),
                  (b"cross-origin-opener-policy", b"same-origin")]
        self.default = [*common, (b"x-frame-options", b"DENY"),
                        (b"content-security-policy",
                         content_security_policy(basemap_url).encode())]
        self.embed = [*common, (b"content-security-policy",
                                content_security_policy(basemap_url, "*").encode())]

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        """The headers a response to `path` gets (for ASGI layers that answer before this one)."""
        return self.embed if EMBED_PATH.match(path) else self.default

    def secure(self, path: str, send: Any) -> Any:
        """`send`, adding the headers for `path` to the response start (a handler's own win)."""
        extra = self.headers_for(path)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {bytes(name).lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self.secure(scope.get("path", ""), send))
