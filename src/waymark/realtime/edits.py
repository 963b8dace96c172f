"""The edit bus: what domain routes call after commit, in front of the channel backend."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from waymark.backends.protocols import Channels

log = logging.getLogger("waymark.realtime")


class EditBus:
    """What domain routes call after commit: ``publish(map_id, event)``; never blocks.

    Events go through one queue per process, drained by one task, so they reach the
    channel backend (and get their sequence numbers) in commit order.
    """

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None and self._loop is not None and not self._loop.is_closed() \
                and self._loop.is_running():
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._drain())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def publish(self, map_id: str, event: dict[str, Any]) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait((map_id, event))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, (map_id, event))

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 100:
                batch.append(self._queue.get_nowait())
            try:
                await self.channels.publish_many(batch)
            except Exception:
                log.exception("publishing %d edit events failed", len(batch))
