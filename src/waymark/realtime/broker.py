"""The embedded broker: what Redis shares between processes, for the app workers of one
`waymark serve` when no WAYMARK_REDIS_URL is set (docs/decisions/0018-embedded-broker.md).

`waymark serve --workers N` runs `Broker` in its own process (a thread with an event loop)
on a Unix socket in the data dir; each app worker connects one `BrokerClient`. The broker
keeps in memory what the workers must agree on:

- per map: the edit sequence number, the replay window and who is subscribed (pub/sub);
- presence entries, each with a deadline;
- rate-limit counters, each with an expiry.

Frames are JSON lines. A request ``{"id", "op", ...}`` is answered ``{"id", "ok"}`` or
``{"id", "error"}``; a message for subscribers is pushed as ``[map_id, seq | null, text]``.
The backends that use it (realtime/brokered.py, ratelimit/limiter.py) have the interface of their
memory and Redis twins (backends/protocols.py). This module must stay light: the serve process imports it, not the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from waymark import jsonutil
from waymark.backends.memory import MemoryCounters
from waymark.backends.protocols import SharedUnavailable

log = logging.getLogger("waymark.broker")
LINE_LIMIT = 128 * 1024 * 1024  # one frame: an edit event can carry a large geometry
SWEEP_SECONDS = 30.0


class BrokerUnavailable(SharedUnavailable):
    """The broker did not answer (the serve process is stopping, or gone)."""


def edit_text(seq: int, body: str) -> str:
    """The numbered edit message: ``{"type":"edit","seq":N, <the event's members>}``."""
    return '{"type":"edit","seq":' + str(seq) + "," + body[1:]


class _State:
    """Everything the broker holds; one event loop thread touches it."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.seq: dict[str, int] = {}
        self.log: dict[str, deque[tuple[int, str]]] = {}
        self.subscribers: dict[str, set[asyncio.StreamWriter]] = {}
        self.presence: dict[str, dict[str, tuple[float, Any]]] = {}
        self.counters = MemoryCounters()

    def push(self, map_id: str, seq: int | None, text: str) -> None:
        frame = jsonutil.dumpb([map_id, seq, text]) + b"\n"
        for peer in list(self.subscribers.get(map_id, ())):
            if not peer.is_closing():
                peer.write(frame)

    def publish(self, items: list[list[str]]) -> list[int]:
        seqs = []
        for map_id, body in items:
            seq = self.seq.get(map_id, 0) + 1
            self.seq[map_id] = seq
            text = edit_text(seq, body)
            self.log.setdefault(map_id, deque(maxlen=self.window)).append((seq, text))
            self.push(map_id, seq, text)
            seqs.append(seq)
        return seqs

    def history(self, map_id: str, since: int) -> dict[str, Any]:
        entries = [[s, t] for s, t in self.log.get(map_id, ()) if s > since]
        return {"entries": entries, "current": self.seq.get(map_id, 0)}

    def presence_touch(self, items: list[list[Any]], ttl: float) -> None:
        deadline = time.time() + ttl
        for map_id, conn_id, entry in items:
            self.presence.setdefault(map_id, {})[conn_id] = (deadline, entry)

    def presence_list(self, map_id: str) -> list[Any]:
        now = time.time()
        entries = self.presence.get(map_id, {})
        for conn_id in [c for c, (deadline, _) in entries.items() if deadline <= now]:
            del entries[conn_id]
        return [entry for _, entry in entries.values()]

    def incr(self, key: str, amount: int, ttl: float) -> int:
        return self.counters.incr(key, amount, ttl)

    def sweep(self) -> None:
        self.counters.sweep()
        for map_id in list(self.presence):
            self.presence_list(map_id)
            if not self.presence[map_id]:
                del self.presence[map_id]

    def forget(self, peer: asyncio.StreamWriter) -> None:
        for map_id in [m for m, peers in self.subscribers.items() if peer in peers]:
            self.subscribers[map_id].discard(peer)
            if not self.subscribers[map_id]:
                del self.subscribers[map_id]

    def handle(self, peer: asyncio.StreamWriter, request: dict[str, Any]) -> Any:
        op = request["op"]
        if op == "publish":
            return self.publish(request["items"])
        if op == "broadcast":
            self.push(request["map"], None, request["text"])
            return None
        if op == "history":
            return self.history(request["map"], int(request["since"]))
        if op == "subscribe":
            for map_id in request["maps"]:
                self.subscribers.setdefault(map_id, set()).add(peer)
            return None
        if op == "unsubscribe":
            for map_id in request["maps"]:
                self.subscribers.get(map_id, set()).discard(peer)
            return None
        if op == "presence.touch":
            self.presence_touch(request["items"], float(request["ttl"]))
            return None
        if op == "presence.leave":
            self.presence.get(request["map"], {}).pop(request["conn"], None)
            return None
        if op == "presence.list":
            return self.presence_list(request["map"])
        if op == "incr":
            return self.incr(request["key"], int(request["amount"]), float(request["ttl"]))
        raise ValueError(f"unknown operation {op!r}")


class Broker:
    """The server, in a thread of the `waymark serve` process."""

    def __init__(self, path: Path, window: int = 1000) -> None:
        self.path = path
        self.state = _State(window)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._peers: set[asyncio.StreamWriter] = set()

    def start(self) -> None:
        """Listen on the socket (a stale one left by a crash is replaced); returns once it does."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._thread = threading.Thread(target=self._run, name="broker", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failed is not None or not self._ready.is_set():
            raise RuntimeError(f"embedded broker did not start on {self.path}: {self._failed}")

    def stop(self) -> None:
        """Close every worker's connection (they notice at once) and stop listening."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._close_all)
        if self._thread is not None:
            self._thread.join(10)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _close_all(self) -> None:
        assert self._loop is not None
        for peer in list(self._peers):
            peer.transport.abort()  # the socket is closed by the loop's next step ...
        self._loop.call_soon(self._loop.stop)  # ... which runs before this

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(asyncio.start_unix_server(
                self._serve_peer, path=str(self.path), limit=LINE_LIMIT))
            os.chmod(self.path, 0o600)  # only this user's processes may connect
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        sweeper = loop.create_task(self._sweep())
        try:
            loop.run_forever()
        finally:
            sweeper.cancel()
            server.close()
            loop.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.state.sweep()

    async def _serve_peer(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._peers.add(writer)
        try:
            while line := await reader.readline():
                request = jsonutil.loads(line)
                try:
                    reply = {"id": request["id"], "ok": self.state.handle(writer, request)}
                except Exception as exc:  # noqa: BLE001 - answered to the caller
                    reply = {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"}
                writer.write(jsonutil.dumpb(reply) + b"\n")
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.debug("broker peer left: %r", exc)
        finally:
            self._peers.discard(writer)
            self.state.forget(writer)
            writer.close()


Push = Callable[[str, "int | None", str], None]


class BrokerClient:
    """One app worker's connection; reconnects by itself. While it is down requests raise
    BrokerUnavailable and callers fall back to this process, as with Redis (decision 0007)."""

    RETRY_SECONDS = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self.degraded = True
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._on_push: list[Push] = []
        self._on_reconnect: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()

    def on_push(self, fn: Push) -> None:
        self._on_push.append(fn)

    def on_reconnect(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._on_reconnect.append(fn)

    async def start(self, timeout: float = 10.0) -> None:
        if self._task is not None and not self._task.done():
            return
        self._connected = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            log.warning("embedded broker %s not reachable: real time, presence and rate "
                        "limits stay within this process until it is", self.path)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        self._drop(BrokerUnavailable("closed"))

    async def request(self, op: str, **args: Any) -> Any:
        writer = self._writer
        if writer is None or self.degraded:
            raise BrokerUnavailable(f"embedded broker {self.path} is not connected")
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        writer.write(jsonutil.dumpb({"id": self._next_id, "op": op, **args}) + b"\n")
        return await future

    async def _run(self) -> None:
        first = True
        while True:
            try:
                reader, self._writer = await asyncio.open_unix_connection(str(self.path),
                                                                          limit=LINE_LIMIT)
            except OSError:
                await asyncio.sleep(self.RETRY_SECONDS)
                continue
            self.degraded = False
            self._connected.set()
            if not first:
                log.info("embedded broker reachable again")
                for fn in self._on_reconnect:  # tasks: they await answers this loop reads
                    self._callbacks.add(task := asyncio.get_running_loop().create_task(fn()))
                    task.add_done_callback(self._callbacks.discard)
            first = False
            try:
                while line := await reader.readline():
                    self._dispatch(jsonutil.loads(line))
            except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                log.debug("broker connection broke: %r", exc)
            log.warning("embedded broker connection lost: real time, presence and rate limits "
                        "within this process until it is back")
            self._drop(BrokerUnavailable("connection lost"))
            await asyncio.sleep(self.RETRY_SECONDS)

    def _dispatch(self, frame: Any) -> None:
        if isinstance(frame, list):
            map_id, seq, text = frame
            for fn in self._on_push:
                fn(map_id, seq, text)
            return
        future = self._pending.pop(frame.get("id"), None)
        if future is None or future.done():
            return
        if "error" in frame:
            future.set_exception(RuntimeError(f"broker: {frame['error']}"))
        else:
            future.set_result(frame.get("ok"))

    def _drop(self, exc: BaseException) -> None:
        self.degraded = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
