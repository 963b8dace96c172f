"""HEAD is answered like GET without a body (RFC 9110 §9.3.2), for every route at once.

The routes are declared for GET only, so the framework answered HEAD with 405; crawlers,
link checkers and uptime monitors send HEAD. The request goes through as a GET (access
rules, caching headers, Content-Length and ETag are exactly GET's) and the body is dropped.
"""

from __future__ import annotations

from typing import Any


class HeadAsGet:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Any) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)
