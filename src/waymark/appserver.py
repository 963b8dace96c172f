"""The app server's master process under `waymark serve`: granian's command line, with two
fixes to how its processes take a stop signal (a SIGTERM to the process group of `waymark
serve` hung in about one stop in three; tests/integration/test_serve_stop.py).

1. granian forks its workers from this process (the "fork" start method on Linux), and a
   forked worker inherits the master's Python-level SIGTERM/SIGINT handler. In the worker
   that handler only flags the *master's* shutdown (in the worker's copy), so a stop signal
   reaching a worker before it installs its own handlers -- while it imports the app, which
   takes seconds -- was lost: the worker went on to serve and the master waited for it
   forever. Each forked worker gets the default action back at once: a stop before it serves
   ends it; from the moment it serves, granian's handlers (and realtime/shutdown.py's) rule.
2. The master's handler sets a `threading.Event` that its main thread waits on, and worker
   watcher threads set the same event when a worker exits. Python runs a signal handler in
   the main thread between bytecodes -- also while that thread holds the event's lock inside
   `Event.wait()` -- so `Event.set()` in the handler could wait for a lock its own thread
   held: the master blocked for good (no "Shutting down granian" in the log). The handler
   now hands the work to a short-lived thread, which simply waits its turn for the lock.

Both touch granian internals (`granian.server.common.set_main_signals`, reached through
waymark/private_apis.py); a granian upgrade that moves them fails at start, not silently
(tests/unit/test_private_apis.py, tests/unit/test_stop_signals.py).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from waymark.private_apis import granian_master_signals

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def default_stop_signals() -> None:
    """In a freshly forked worker: SIGTERM/SIGINT end it until it installs its own handlers."""
    for signum in STOP_SIGNALS:
        try:
            signal.signal(signum, signal.SIG_DFL)
        except ValueError:  # forked from a thread other than the main one: nothing inherited
            return


def off_the_main_thread(handler: Callable[..., Any]) -> Callable[[int, Any], None]:
    """A signal handler that runs ``handler`` in a new thread (it may take locks that the
    interrupted main thread holds)."""

    def on_signal(signum: int, _frame: Any) -> None:
        threading.Thread(target=handler, args=(signum, None), name="granian-signal",
                         daemon=True).start()

    return on_signal


def install() -> None:
    """Both fixes, in the master process, before granian starts any worker."""
    common = granian_master_signals()
    original = common.set_main_signals  # AttributeError on an incompatible granian

    def set_main_signals(interrupt_handler: Callable[..., Any],
                         reload_handler: Callable[..., Any] | None = None) -> None:
        original(off_the_main_thread(interrupt_handler),
                 off_the_main_thread(reload_handler) if reload_handler else None)

    common.set_main_signals = set_main_signals
    os.register_at_fork(after_in_child=default_stop_signals)


def main() -> None:
    from waymark.lean import skip_console_libraries

    skip_console_libraries()  # before granian loads our logging set-up (structlog)
    install()
    from granian.cli import entrypoint

    entrypoint()


if __name__ == "__main__":
    main()
