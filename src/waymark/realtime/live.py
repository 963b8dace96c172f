"""Live data: devices post positions into a layer; viewers see markers move.

POST /api/v1/maps/{map_id}/live/{layer_id}/positions   (API token with write scope, editor)
    {"device": "truck-7", "lat": 55.95, "lon": -3.19, "ts": "2024-05-01T10:00:00Z"?,
     "properties": {...}?}   or   {"positions": [ ...up to 500 of those... ]}
GET  /api/v1/maps/{map_id}/live/{layer_id}             (anyone who may view the map)
    {"devices": [{"device", "lat", "lon", "ts", "properties", "track": [[lon, lat, ts], ...]}]}

The latest position per device and a short track (``live_track_points``) are kept in Redis
(or this process's memory without Redis) and expire after ``live_ttl_seconds`` of silence.
Each post is broadcast to the map's websocket clients as {"type": "live", ...}. History goes
to the database in batches (table live_positions), written every
``live_flush_seconds`` or every 500 positions, never per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from litestar import Response, get, post
from sqlalchemy import insert

from waymark import jsonutil
from waymark.accounts.actor import Actor
from waymark.backends.redis.hub import RedisHub, RedisUnavailable
from waymark.db.models import LivePosition
from waymark.errors import Invalid
from waymark.maps import layers as layer_ops
from waymark.maps.access import load_map
from waymark.web import Services

if TYPE_CHECKING:  # setup.py imports this module (the dependency is resolved by name)
    from waymark.realtime.setup import Realtime

log = logging.getLogger("waymark.live")
LIVE = "/api/v1/maps/{map_id:str}/live/{layer_id:str}"
MAX_BATCH = 500
FLUSH_AT = 500


def _parse_ts(raw: Any) -> float:
    if raw is None:
        return time.time()
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw) / (1000.0 if raw > 1e11 else 1.0)
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)  # 3.11+: accepts a trailing Z
        except ValueError:
            raise Invalid("ts must be ISO 8601 or Unix seconds", details={"field": "ts"}) from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    raise Invalid("ts must be ISO 8601 or Unix seconds", details={"field": "ts"})


def parse_positions(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise Invalid("send a JSON object", code="invalid_body")
    items = body.get("positions", [body])
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise Invalid(f"positions must be a list of 1 to {MAX_BATCH} positions",
                      details={"field": "positions"})
    out = []
    for i, p in enumerate(items):
        if not isinstance(p, dict):
            raise Invalid("each position must be an object", details={"index": i})
        device = p.get("device")
        if not isinstance(device, str) or not 1 <= len(device) <= 100:
            raise Invalid("device must be a string of 1-100 characters",
                          details={"index": i, "field": "device"})
        lat, lon = p.get("lat"), p.get("lon")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in (lat, lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise Invalid("lat must be in [-90, 90] and lon in [-180, 180]",
                          details={"index": i, "field": "lat"})
        props = p.get("properties") or {}
        if not isinstance(props, dict) or len(jsonutil.dumpb(props)) > 4096:
            raise Invalid("properties must be an object of at most 4 KB",
                          details={"index": i, "field": "properties"})
        out.append({"device": device, "lat": float(lat), "lon": float(lon),
                    "ts": round(_parse_ts(p.get("ts")), 3), "properties": props})
    return out


class LiveStore:
    """Latest position + short track per device; Redis with expiry, or process memory."""

    def __init__(self, hub: RedisHub | None, ttl: int = 600, track_points: int = 50) -> None:
        self.hub = hub
        self.ttl = ttl
        self.track_points = track_points
        self._mem: dict[int, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _mem_add(self, layer_pk: int, positions: list[dict[str, Any]]) -> None:
        now = time.time()
        with self._lock:
            devices = self._mem.setdefault(layer_pk, {})
            for p in positions:
                d = devices.setdefault(p["device"], {"track": []})
                d.update(p, seen=now)
                d["track"] = (d["track"] + [[p["lon"], p["lat"], p["ts"]]])[-self.track_points:]

    async def add(self, layer_pk: int, positions: list[dict[str, Any]]) -> None:
        if self.hub is None:
            self._mem_add(layer_pk, positions)
            return
        hub = self.hub
        latest = hub.key("live", layer_pk)

        seen = time.time()

        async def run(client: Any) -> Any:
            pipe = client.pipeline(transaction=False)
            for p in positions:
                track = hub.key("track", layer_pk, p["device"])
                pipe.hset(latest, p["device"], jsonutil.dumps({**p, "seen": seen}))
                pipe.rpush(track, jsonutil.dumps([p["lon"], p["lat"], p["ts"]]))
                pipe.ltrim(track, -self.track_points, -1)
                pipe.expire(track, self.ttl)
            pipe.expire(latest, self.ttl)
            return await pipe.execute()

        try:
            await hub.run(run)
        except RedisUnavailable:
            self._mem_add(layer_pk, positions)

    async def current(self, layer_pk: int) -> list[dict[str, Any]]:
        if self.hub is not None:
            hub = self.hub
            try:
                latest = hub.key("live", layer_pk)
                raw = await hub.run(lambda r: r.hgetall(latest))
                devices = [jsonutil.loads(v) for v in raw.values()]
                # the hash expires as a whole; a device silent for `ttl` expires on its own
                cutoff = time.time() - self.ttl
                fresh = [d for d in devices if d.pop("seen", 0) >= cutoff]
                gone = [d["device"] for d in devices if d not in fresh]
                if gone:
                    await hub.run(lambda r: r.hdel(latest, *gone))

                async def tracks(client: Any) -> Any:
                    pipe = client.pipeline(transaction=False)
                    for d in fresh:
                        pipe.lrange(hub.key("track", layer_pk, d["device"]), 0, -1)
                    return await pipe.execute()

                for d, track in zip(fresh, await hub.run(tracks), strict=False):
                    d["track"] = [jsonutil.loads(t) for t in track]
                return sorted(fresh, key=lambda d: d["device"])
            except RedisUnavailable:
                pass
        cutoff = time.time() - self.ttl
        with self._lock:
            devices = self._mem.get(layer_pk, {})
            for name in [n for n, d in devices.items() if d["seen"] < cutoff]:
                del devices[name]
            return [{k: v for k, v in d.items() if k != "seen"}
                    for _, d in sorted(devices.items())]


class HistoryWriter:
    """Buffers positions and writes them to live_positions in batches."""

    def __init__(self, db: Any, interval: float = 5.0) -> None:
        self.db = db
        self.interval = interval
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.flushes = 0

    def add(self, layer_pk: int, positions: list[dict[str, Any]]) -> None:
        rows = [{"layer_id": layer_pk, "device": p["device"], "lat": p["lat"], "lon": p["lon"],
                 "recorded_at": datetime.fromtimestamp(p["ts"], UTC),
                 "properties": jsonutil.dumps(p["properties"])} for p in positions]
        with self._lock:
            self._buffer.extend(rows)
            full = len(self._buffer) >= FLUSH_AT
        if full and self._wake is not None:
            self._wake.set()

    def flush(self) -> int:
        with self._lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        try:
            with self.db.write() as s:
                s.execute(insert(LivePosition), rows)
            self.flushes += 1
        except Exception as exc:  # noqa: BLE001 - keep the rows for the next attempt
            log.warning("writing %d live positions failed: %s", len(rows), exc)
            with self._lock:
                self._buffer[:0] = rows[-100_000:]
            return 0
        return len(rows)

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await to_thread.run_sync(self.flush)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await to_thread.run_sync(self.flush)


@post(LIVE + "/positions", status_code=202, tags=["live"])
async def post_positions(services: Services, realtime: Realtime, actor: Actor, map_id: str,
                         layer_id: str, data: Any) -> Response:
    """Report device positions (an API token with write scope, editor of the map)."""
    positions = parse_positions(data)

    def check() -> int:
        with services.db.read() as s:
            map_, _ = load_map(s, map_id, actor, "edit")
            return layer_ops.get_layer(s, map_, layer_id).id

    layer_pk = await to_thread.run_sync(check)
    await realtime.live.add(layer_pk, positions)
    realtime.history.add(layer_pk, positions)
    await realtime.channels.broadcast(map_id, {"type": "live", "layer": layer_id,
                                               "positions": positions})
    return Response({"accepted": len(positions)}, status_code=202)


@get(LIVE, tags=["live"])
async def get_live(services: Services, realtime: Realtime, actor: Actor, map_id: str,
                   layer_id: str) -> dict[str, Any]:
    """Current device positions with their recent tracks."""

    def check() -> int:
        with services.db.read() as s:
            map_, _ = load_map(s, map_id, actor)
            return layer_ops.get_layer(s, map_, layer_id).id

    layer_pk = await to_thread.run_sync(check)
    return {"layer": layer_id,
            "devices": await realtime.live.current(layer_pk)}


ROUTES = [post_positions, get_live]
