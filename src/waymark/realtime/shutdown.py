"""Graceful stop for websockets: clients get close code 1012 ("service restart") and reconnect
at once (to another instance, or to this one once it is back) instead of seeing a dropped
connection (1006) and backing off.

Why a hook into granian's signal setup: when a granian worker gets SIGTERM/SIGINT it sets
its shutdown signal, the Rust server stops accepting, and every open websocket is dropped
right away without a valid close frame; the ASGI lifespan shutdown only runs afterwards (once
the HTTP requests in flight are done), too late to say goodbye. So the close has to happen
*before* granian sees the signal. `close_websockets_on_stop()` wraps
``granian._signals.set_loop_signals`` (a worker calls it after importing the app, before
serving): the signal first closes this process's open websockets, waits for their handlers
to finish (at most `CLOSE_TIMEOUT`), then hands over to granian, which stops accepting and
finishes the requests in flight as before. Checked by tests/integration/test_deploy_shutdown.py
against the granian version in uv.lock.

A handler cannot simply be closed from outside: granian holds a websocket's close back while
a receive is pending on it. So each handler watches `OpenSockets.track()`'s event, cancels
its own receive, then closes (see `waymark.realtime.ws.map_socket`).

The signal must never be lost: granian runs the worker's event loop twice (the app's
start-up, then serving) and uvloop does not listen to signals between two runs, so the
handler is also installed at the Python level (see `_close_first`); before the hook is in
place, waymark/appserver.py gives the forked worker the default action back.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from waymark.private_apis import granian_worker_signals

log = logging.getLogger("waymark.realtime")

RESTART_CODE = 1012  # RFC 6455 registry: "service restart" — reconnect soon
RESTART_REASON = "server restarting"
CLOSE_TIMEOUT = 3.0  # seconds open websockets get before granian's own shutdown goes on


class OpenSockets:
    """The websockets this process serves; all are told to close when it stops."""

    def __init__(self) -> None:
        self._events: dict[object, asyncio.Event] = {}
        self.stopping = False

    def __len__(self) -> int:
        return len(self._events)

    @contextmanager
    def track(self) -> Iterator[asyncio.Event]:
        """For one handler: an event set when it must close with `RESTART_CODE` (already set
        when this process is stopping: the listener accepts for a moment still)."""
        key, event = object(), asyncio.Event()
        if self.stopping:
            event.set()
        self._events[key] = event
        try:
            yield event
        finally:
            del self._events[key]

    async def close_all(self, timeout: float = CLOSE_TIMEOUT) -> int:
        """Ask every handler to close and wait (bounded) until they have; returns how many."""
        self.stopping = True
        count = len(self._events)
        for event in list(self._events.values()):
            event.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._events and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self._events:
            log.warning("%d websocket(s) still open after %gs; stopping anyway",
                        len(self._events), timeout)
        return count


OPEN = OpenSockets()  # one per process: a stop signal is per process


def close_websockets_on_stop(sockets: OpenSockets = OPEN) -> bool:
    """Under granian: close `sockets` before the worker lets go of them (see module doc).
    Returns False when granian is not installed (other servers: nothing to hook)."""
    _signals = granian_worker_signals()
    if _signals is None:
        return False
    original = _signals.set_loop_signals
    if getattr(original, "waymark_hook", False):
        return True  # installed already (several apps in one process)

    def set_loop_signals(loop: asyncio.AbstractEventLoop) -> Any:
        stop_event = original(loop)  # granian's WorkerSignal: .set() starts its shutdown
        _close_first(loop, stop_event, sockets)
        return stop_event

    set_loop_signals.waymark_hook = True  # type: ignore[attr-defined]
    _signals.set_loop_signals = set_loop_signals
    return True


def _close_first(loop: asyncio.AbstractEventLoop, stop_event: Any, sockets: OpenSockets) -> None:
    started: list[asyncio.Task[None]] = []

    async def stop() -> None:
        try:
            closed = await sockets.close_all()
            if closed:
                log.info("closed %d websocket(s) with %d before stopping", closed, RESTART_CODE)
        except Exception as exc:  # noqa: BLE001 - never block granian's shutdown
            log.warning("closing websockets before stopping failed: %r", exc)
        finally:
            stop_event.set()

    def on_signal() -> None:
        if not started:  # a repeated signal changes nothing: the wait is bounded
            started.append(loop.create_task(stop()))

    def on_signal_anywhere(_signum: int, _frame: Any) -> None:
        loop.call_soon_threadsafe(on_signal)

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal)  # replaces granian's handler
        except (NotImplementedError, RuntimeError, ValueError):
            return  # no loop signal handlers here: granian's own stay in place
        # granian runs the loop twice (the app's start-up, then serving) and uvloop stops
        # listening to signals between two runs: a SIGTERM landing there was lost and the
        # worker served on. The Python-level handler runs whenever the main thread next
        # runs Python, and queues the stop for the loop (on_signal runs once either way).
        signal.signal(signum, on_signal_anywhere)
