"""GET /api/v1/maps/{map_id}/ws: live collaboration on one map.

Connect with the session cookie (same origin only) or an API token (``Authorization: Bearer``
or ``?access_token=``); add ``?since=<last seq>`` when reconnecting. Viewers receive; editors
(write scope) may also send edits, which are persisted exactly like HTTP edits and then
broadcast. When this server process stops (SIGTERM: deploy, restart) the socket is closed with
1012 "service restart": reconnect after a short delay, with ``?since``.

Protocol (JSON text frames):

server -> client
  {"type":"hello","seq":N,"conn":id,"role":r,"can_edit":b,"status":"ok"|"degraded",
   "read_only":null|"message",...}
  {"type":"edit","seq":N,"op":"feature.create|feature.update|feature.delete|layer.*|map.*",...}
  {"type":"resync","reason":"window|redis_recovered|overflow|gap","seq":N}  refetch the map
  {"type":"presence","users":[{id,name,role,state}],"anonymous":n}
  {"type":"live","layer":id,"positions":[{device,lat,lon,ts,...}]}
  {"type":"status","state":"ok"|"degraded"}
  {"type":"ack","ref":r,"feature":{...}|null,"layer_version":v}  /  {"type":"error",...}
  (an edit while the service is read-only: {"type":"error","status":503,"error":{"code":"read_only"}})
client -> server
  {"type":"edit","ref":r,"layer":id,"op":"create|update|delete","id","geometry","properties","version"}
  {"type":"presence","state":"viewing|editing"}   {"type":"ping"}
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from anyio import to_thread
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from waymark import jsonutil
from waymark.accounts.actor import Actor, resolve_actor
from waymark.backends.fanout import Subscriber
from waymark.backends.redis.hub import RedisUnavailable
from waymark.db.errors import database_unavailable, database_unavailable_error
from waymark.errors import ApiError, Forbidden, Invalid, ws_api_error, ws_error
from waymark.maps.access import load_map
from waymark.maps.editing import parse_version
from waymark.maps.feature_write import FeatureEdit, apply_feature_edit
from waymark.observability.metrics import WS_CONNECTIONS, WS_MESSAGES
from waymark.realtime.broker import BrokerUnavailable
from waymark.realtime.shutdown import OPEN, RESTART_CODE, RESTART_REASON
from waymark.web import Services

if TYPE_CHECKING:  # setup.py imports this module (the dependency is resolved by name)
    from waymark.realtime.setup import Realtime

log = logging.getLogger("waymark.realtime")
WS_PATH = "/api/v1/maps/{map_id:str}/ws"
_CLOSE = {401: 4401, 403: 4403, 404: 4404}
_RECHECK_OPS = ('"op":"map.update"', '"op":"map.delete"', '"op":"access.changed"')
_IN = WS_MESSAGES.labels(direction="in")
_OUT = WS_MESSAGES.labels(direction="out")


def _header(socket: WebSocket, name: str) -> str | None:
    return socket.headers.get(name)


def same_origin(socket: WebSocket, public_url: str) -> bool:
    """Cookies ride along on cross-site websocket requests too: only trust them from pages
    of this site (Origin equals the Host the client connected to, or the public URL)."""
    origin = _header(socket, "origin")
    if not origin:
        return True  # not a browser
    netloc = urlsplit(origin).netloc.lower()
    host = (_header(socket, "host") or "").lower()
    return netloc == host or netloc == urlsplit(public_url).netloc.lower()


class Connection:
    def __init__(self, socket: WebSocket, map_id: str, services: Services,
                 realtime: Realtime) -> None:
        self.socket = socket
        self.map_id = map_id
        self.app = socket.app
        self.svc = services
        self.rt = realtime
        self.id = uuid.uuid4().hex[:16]
        self.authorization: str | None = None
        self.session_data: dict | None = None
        self.actor = Actor()
        self.role: str | None = None
        self.can_edit = False
        self.state = "viewing"
        self.sub: Subscriber | None = None
        self.closed = False

    @property
    def last_seq(self) -> int | None:
        """The last numbered event sent to this client (None: unknown, accept the next)."""
        return self.sub.last_seq if self.sub is not None else None

    @last_seq.setter
    def last_seq(self, value: int | None) -> None:
        assert self.sub is not None
        self.sub.last_seq = value

    # ---- access --------------------------------------------------------------------------
    def _resolve(self) -> tuple[Actor, str | None, bool]:
        with self.svc.db.read() as s:
            actor = resolve_actor(s, method="GET", authorization=self.authorization,
                                  session_data=self.session_data, csrf_header=None)
            _, role = load_map(s, self.map_id, actor)
        can_edit = role in ("editor", "owner") and actor.scope == "write"
        return actor, role, can_edit

    async def authenticate(self) -> None:
        socket = self.socket
        token = _header(socket, "authorization")
        if not token and socket.query_params.get("access_token"):
            token = f"Bearer {socket.query_params['access_token']}"
        self.authorization = token
        session = socket.scope.get("session")
        if isinstance(session, dict) and same_origin(socket, self.svc.settings.public_url):
            self.session_data = session
        self.actor, self.role, self.can_edit = await to_thread.run_sync(self._resolve)

    def entry(self) -> dict[str, Any]:
        return {"user_id": self.actor.user_id, "name": self.actor.display_name,
                "role": self.role, "state": self.state}

    # ---- sending ---------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        assert self.sub is not None
        self.sub.deliver(None, jsonutil.dumps(message))

    async def _send_now(self, text: str) -> None:
        await self.socket.send_text(text)
        _OUT.inc()

    async def writer(self) -> None:
        assert self.sub is not None
        queue = self.sub.queue
        while True:
            seq, text = await queue.get()
            if self.sub.overflowed:
                self.sub.overflowed = False
                while not queue.empty():
                    queue.get_nowait()
                await self._send_now('{"type":"resync","reason":"overflow"}')
                continue
            if seq is None and text.startswith('{"type":"resync"'):
                self.last_seq = None  # Redis may have lost its counter: accept what comes next
            if seq is not None:
                last = self.last_seq
                if last is not None and seq <= last:
                    continue  # already sent (during a catch-up)
                if last is not None and seq > last + 1:
                    await self._send_now(f'{{"type":"resync","reason":"gap","seq":{seq}}}')
                self.last_seq = seq
            if text.startswith('{"type":"edit"') and any(op in text for op in _RECHECK_OPS) \
                    and not await self._still_allowed():
                return
            await self._send_now(text)

    async def _still_allowed(self) -> bool:
        try:
            self.actor, self.role, self.can_edit = await to_thread.run_sync(self._resolve)
            return True
        except ApiError as exc:
            await self._send_now(jsonutil.dumps(ws_error("access_lost", exc.message)))
            await self.socket.close(code=_CLOSE.get(exc.status_code, 4403), reason="access_lost")
            self.closed = True
            return False

    # ---- catch-up --------------------------------------------------------------------------
    async def catch_up(self, since: int | None) -> tuple[int, str, list[tuple[int, str]] | None]:
        """What a reconnecting client missed: (current seq, status, events or None = resync)."""
        channels = self.rt.channels
        try:
            missed, current = await channels.history(self.map_id, since if since is not None
                                                     else 1 << 62)
        except (RedisUnavailable, BrokerUnavailable):
            return 0, "degraded", []
        status = "degraded" if channels.degraded else "ok"
        self.last_seq = current
        if since is None or since == current:
            return current, status, []
        return current, status, missed

    # ---- receiving -------------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        _IN.inc()
        decision = await self.rt.limiter.hit("ws_message", self._ident())
        if decision is not None and not decision.allowed:
            self.send(ws_error("rate_limited", "too many messages",
                               {"retry_after": decision.reset, "limit": decision.rule.limit}))
            return
        try:
            msg = jsonutil.loads(raw)
        except Exception:  # noqa: BLE001
            self.send(ws_error("invalid_json", "not JSON"))
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "ping":
            self.send({"type": "pong", "seq": self.last_seq or 0})
        elif kind == "presence":
            state = msg.get("state")
            if state in ("viewing", "editing") and state != self.state:
                self.state = state if (state == "viewing" or self.can_edit) else "viewing"
                await self.rt.presence_changed(self.map_id, self.id, self.entry())
        elif kind == "edit":
            await self._edit(msg)
        else:
            self.send(ws_error("unknown_type", f"unknown message type {kind!r}"))

    def _ident(self) -> str:
        if self.actor.user_id is not None:
            return f"u:{self.actor.user_id}"
        return f"ip:{(self.socket.scope.get('client') or ('?',))[0]}"

    async def _edit(self, msg: dict[str, Any]) -> None:
        ref = msg.get("ref")
        try:
            if not self.can_edit:
                raise Forbidden("you need the editor role (and a write token) to edit",
                                code="editor_required")
            await self.svc.read_only.check_async()  # 503 read_only while in maintenance
            try:
                event, layer_pk, ack = await to_thread.run_sync(self._apply, msg)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                raise database_unavailable_error() from None
        except ApiError as exc:
            self.send(ws_api_error(exc, ref=ref, status=exc.status_code))
            return
        self.svc.publisher.schedule(layer_pk)
        self.svc.edits.publish(self.map_id, event)
        self.send({"type": "ack", "ref": ref, **ack})

    def _apply(self, msg: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, Any]]:
        """The edit through the one edit path (feature_write.apply_feature_edit), as the
        actor resolved again inside the write transaction (a revoked token stops at once)."""
        op = msg.get("op")
        if op not in ("create", "update", "delete"):
            raise Invalid("op must be create, update or delete", details={"field": "op"})
        layer_id = str(msg.get("layer") or "")
        edit = FeatureEdit.of(op, msg, parse_version(msg.get("version")))
        with self.svc.db.write() as s:
            actor = resolve_actor(s, method="GET", authorization=self.authorization,
                                  session_data=self.session_data, csrf_header=None)
            edited = apply_feature_edit(s.connection(), actor, self.map_id, layer_id, edit)
        return (edited.event(layer_id, actor), edited.layer_pk,
                {"feature": edited.feature, "layer_version": edited.layer_version})


@websocket(WS_PATH, name="map_socket")
async def map_socket(socket: WebSocket, services: Services, realtime: Realtime,
                     map_id: str) -> None:
    """Live edits, presence and live positions of one map (see the module docstring)."""
    conn = Connection(socket, map_id, services, realtime)
    await socket.accept()
    with OPEN.track() as restart:  # set when this process stops: close with 1012
        if restart.is_set():
            await socket.close(code=RESTART_CODE, reason=RESTART_REASON)
            return
        await _serve(conn, restart)


async def _serve(conn: Connection, restart: asyncio.Event) -> None:
    socket, map_id = conn.socket, conn.map_id
    try:
        await conn.authenticate()
    except ApiError as exc:
        await socket.send_text(jsonutil.dumps(ws_api_error(exc)))
        await socket.close(code=_CLOSE.get(exc.status_code, 4400), reason=exc.code)
        return
    rt = conn.rt
    raw_since = socket.query_params.get("since")
    since = int(raw_since) if raw_since and raw_since.lstrip("-").isdigit() else None
    conn.sub = Subscriber(map_id)
    WS_CONNECTIONS.inc()
    writer: asyncio.Task[None] | None = None
    try:
        await rt.channels.subscribe(conn.sub)
        rt.connections[conn.id] = conn
        current, status, missed = await conn.catch_up(since)
        await rt.presence.touch(map_id, conn.id, conn.entry())
        presence = await rt.presence.list(map_id)
        read_only = await conn.svc.read_only.current_async()
        await conn._send_now(jsonutil.dumps({
            "type": "hello", "seq": current, "since": since, "conn": conn.id, "role": conn.role,
            "can_edit": conn.can_edit, "status": status, "presence": presence,
            "read_only": read_only.message if read_only else None,
            "replay": len(missed) if missed is not None else None,
            "user": {"id": conn.actor.user_id, "name": conn.actor.display_name}
            if conn.actor.user_id else None}))
        if missed is None:  # further behind than the window (or the counter was reset)
            await conn._send_now(f'{{"type":"resync","reason":"window","seq":{current}}}')
        for _, text in missed or ():
            await conn._send_now(text)
        await rt.channels.broadcast(map_id, presence)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        receiver = asyncio.get_running_loop().create_task(_receive(conn))
        stop = asyncio.get_running_loop().create_task(restart.wait())
        done, pending = await asyncio.wait({writer, receiver, stop},
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if done == {stop}:  # this process is stopping; the client is still there
            # granian holds a close back while a receive is pending: end that first
            await asyncio.gather(*pending, return_exceptions=True)
            try:
                await socket.close(code=RESTART_CODE, reason=RESTART_REASON)
            except Exception as exc:  # noqa: BLE001 - the client left meanwhile
                log.debug("websocket %s: restart close failed: %r", conn.id, exc)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                log.debug("websocket %s ended: %r", conn.id, exc)
    finally:
        WS_CONNECTIONS.dec()
        rt.connections.pop(conn.id, None)
        await rt.channels.unsubscribe(conn.sub)
        try:
            await rt.presence.leave(map_id, conn.id)
            await rt.channels.broadcast(map_id, await rt.presence.list(map_id))
        except Exception as exc:  # noqa: BLE001 - best effort; entries expire anyway
            log.debug("presence leave failed: %s", exc)
        if writer is not None:
            writer.cancel()


async def _receive(conn: Connection) -> None:
    while True:
        raw = await conn.socket.receive_text()
        await conn.handle(raw)
