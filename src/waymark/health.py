"""/healthz (the process answers) and /readyz (its dependencies answer)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from litestar import Request, Response, get

from waymark.web import Services

if TYPE_CHECKING:  # (the dependency is resolved by name: dependencies.py)
    from waymark.realtime.setup import Realtime


@get("/healthz", tags=["ops"], include_in_schema=True)
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving. Checks nothing else, by design."""
    return {"status": "ok"}


async def _check(name: str, fn) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    try:
        await fn()
        return {"name": name, "ok": True, "ms": round((time.perf_counter() - start) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        return {"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


@get("/readyz", tags=["ops"])
async def readyz(request: Request, services: Services, realtime: Realtime) -> Response:
    """Readiness: database, object storage and cache reachable. 503 with detail when not."""

    async def database() -> None:
        await to_thread.run_sync(services.db.ping)

    async def cache() -> None:
        store = request.app.stores.get("cache")
        await store.set("readyz", b"1", expires_in=10)
        if await store.get("readyz") != b"1":
            raise RuntimeError("cache did not return what was written")

    checks = [await _check("database", database),
              await _check("object_storage", services.store.ping),
              await _check("cache", cache)]
    ready = all(c["ok"] for c in checks)
    # Redis is optional at run time: when it is down the app serves from its fallbacks, so
    # it makes the status "degraded" (still 200, keep routing traffic here), never not_ready.
    redis = await realtime.check()
    status = "ready" if redis["ok"] else "degraded"
    body = {"status": status if ready else "not_ready",
            "checks": {**{c.pop("name"): c for c in checks}, "redis": redis}}
    return Response(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})
