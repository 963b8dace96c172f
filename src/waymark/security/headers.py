"""Security headers on every HTTP response (pages, API, errors, 429s, static files).

The pages load one script bundle from /static and carry their configuration in data-*
attributes (see pages.py), so the CSP allows scripts from 'self' only: no 'unsafe-inline',
no eval. Styles keep 'unsafe-inline' because Leaflet and the presence panel set inline style
attributes; that does not open a script-injection path. Only the embed page may be framed
by other sites; every other response forbids framing (frame-ancestors 'none' + X-Frame-Options).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from waymark.basemaps.presets import Presets, url_origin

EMBED_PATH = re.compile(r"^/m/[^/]+/embed/?$")
REFERRER_POLICY = b"strict-origin-when-cross-origin"


def content_security_policy(image_origins: Sequence[str] = (), connect_origins: Sequence[str] = (),
                            frame_ancestors: str = "'none'") -> str:
    """The CSP: same origin only, plus the basemap presets' origins (raster tiles are images,
    vector archives are fetched) and nothing else."""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": " ".join(["'self'", "data:", "blob:", *image_origins]),
        # CSP3: 'self' also matches ws:/wss: to this host
        "connect-src": " ".join(["'self'", *connect_origins]),
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": frame_ancestors,
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def _origins(presets: Presets, raster: bool) -> list[str]:
    found = (url_origin(b.url) for b in presets.items if (b.type != "pmtiles") == raster)
    return list(dict.fromkeys(o for o in found if o))


def image_origins(presets: Presets) -> list[str]:
    """Other origins the pages may load images from (raster tile servers): popups show
    images from these (and this origin) and link to the rest."""
    return _origins(presets, raster=True)


def basemap_csp(presets: Presets, frame_ancestors: str = "'none'") -> str:
    """The CSP for these basemap presets."""
    return content_security_policy(image_origins(presets), _origins(presets, raster=False),
                                   frame_ancestors)


class SecurityHeadersMiddleware:
    """Plain ASGI middleware, outermost, so even responses that never reach a handler
    (rate-limited, 404, 413) carry the headers. A header a handler set itself is kept."""

    def __init__(self, app: Any, presets: Presets) -> None:
        self.app = app
        common = [(b"x-content-type-options", b"nosniff"),
                  (b"referrer-policy", REFERRER_POLICY),
                  (b"cross-origin-opener-policy", b"same-origin")]
        self.default = [*common, (b"x-frame-options", b"DENY"),
                        (b"content-security-policy",
                         basemap_csp(presets).encode())]
        self.embed = [*common, (b"content-security-policy",
                                basemap_csp(presets, "*").encode())]

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
