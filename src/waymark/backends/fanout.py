"""What every channel backend shares: the edit message text, the replay-window check, and
the fan-out of messages to this process's websocket subscribers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from waymark import jsonutil

QUEUE_LIMIT = 2000  # messages waiting for one slow websocket client before it must resync


def edit_message(seq: int | None, event: dict[str, Any]) -> str:
    body = jsonutil.dumps(event)
    return '{"type":"edit","seq":' + ("null" if seq is None else str(seq)) + "," + body[1:]


def replay_window(entries: list[tuple[int, str]], since: int, current: int) -> list[tuple[int, str]] | None:
    """Events after `since` from a backend's window, or None when some of them left it."""
    if since > current:
        return None  # the counter was reset (Redis lost its data): the client must reload
    if since == current:
        return []
    missed = [(seq, text) for seq, text in entries if seq > since]
    if not missed or missed[0][0] != since + 1:
        return None
    return missed


class Subscriber:
    """One websocket connection's inbox: thread-safe, bounded, remembers the last seq sent."""

    def __init__(self, map_id: str) -> None:
        self.map_id = map_id
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
        self.overflowed = False
        self.filter: Callable[[str], bool] | None = None  # e.g. drop messages after access loss
        # the last numbered event this client was sent (None: unknown, accept what comes next);
        # kept up to date by the websocket writer, read when catching up after a reconnect
        self.last_seq: int | None = None

    def deliver(self, seq: int | None, text: str) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._put(seq, text)
        else:
            self.loop.call_soon_threadsafe(self._put, seq, text)

    def _put(self, seq: int | None, text: str) -> None:
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.queue.put_nowait((seq, text))


class Fanout:
    """map id -> the subscribers in this process."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self._lock = threading.Lock()

    def add(self, sub: Subscriber) -> bool:
        with self._lock:
            group = self._subs.setdefault(sub.map_id, set())
            group.add(sub)
            return len(group) == 1

    def remove(self, sub: Subscriber) -> bool:
        with self._lock:
            group = self._subs.get(sub.map_id)
            if not group:
                return False
            group.discard(sub)
            if not group:
                del self._subs[sub.map_id]
                return True
            return False

    def send(self, map_id: str, seq: int | None, text: str) -> None:
        with self._lock:
            group = list(self._subs.get(map_id, ()))
        for sub in group:
            sub.deliver(seq, text)

    def send_all(self, text: str) -> None:
        for map_id in self.maps():
            self.send(map_id, None, text)

    def members(self, map_id: str) -> list[Subscriber]:
        with self._lock:
            return list(self._subs.get(map_id, ()))

    def maps(self) -> list[str]:
        with self._lock:
            return list(self._subs)

    def count(self) -> int:
        with self._lock:
            return sum(len(g) for g in self._subs.values())
