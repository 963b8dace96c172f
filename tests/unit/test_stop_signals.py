"""How the app server's processes take a stop signal (waymark.appserver and
waymark.realtime.shutdown), checked with real signals to this process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import uvloop

from waymark import appserver
from waymark.realtime.shutdown import OpenSockets, _close_first


@pytest.fixture
def restored_signals() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in appserver.STOP_SIGNALS}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(wakeup)


async def _until(event: threading.Event, timeout: float = 30) -> None:
    async def poll() -> None:
        while not event.is_set():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
def test_a_stop_signal_between_two_runs_of_the_loop_is_not_lost(
        new_loop: Callable[[], asyncio.AbstractEventLoop], restored_signals: None) -> None:
    """granian runs a worker's loop twice: the app's start-up, then serving. uvloop stops
    listening to signals between two runs; a SIGTERM landing there must still stop it."""
    loop = new_loop()
    stopped = threading.Event()  # stands for granian's WorkerSignal: its .set() stops serving
    try:
        _close_first(loop, stopped, OpenSockets())
        loop.run_until_complete(asyncio.sleep(0))  # the app's start-up ran
        os.kill(os.getpid(), signal.SIGTERM)  # while granian sets up serving
        loop.run_until_complete(_until(stopped))
    finally:
        loop.close()


def test_a_forked_worker_dies_of_a_stop_signal_before_it_has_handlers() -> None:
    """A child forked from a process with Python SIGTERM handlers gets the default action back
    (the master's handler would only flag the master's own shutdown). In a fresh interpreter:
    the at-fork hook cannot be taken back."""
    script = """
import os, signal, sys
from waymark import appserver
signal.signal(signal.SIGTERM, lambda *_: None)  # what granian's master installs
if sys.argv[1] == "fixed":
    os.register_at_fork(after_in_child=appserver.default_stop_signals)
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write_end, b"ready")
    signal.alarm(20)  # a child that ignored SIGTERM ends anyway (SIGALRM)
    while True:
        signal.pause()
os.read(read_end, 5)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exited")
"""
    for mode, expected in (("fixed", signal.SIGTERM), ("inherited", signal.SIGALRM)):
        proc = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                              text=True, timeout=120, check=True)
        assert proc.stdout.strip() == str(int(expected)), (mode, proc.stdout, proc.stderr)


def test_the_master_signal_handler_does_not_run_on_the_interrupted_thread() -> None:
    ran_on: list[str] = []
    done = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        ran_on.append(threading.current_thread().name)
        done.set()

    appserver.off_the_main_thread(handler)(signal.SIGTERM, None)
    assert done.wait(30)
    assert ran_on == ["granian-signal"]


def test_granian_still_has_what_appserver_patches() -> None:
    from granian.server import common

    assert callable(common.set_main_signals)  # appserver.install() wraps it


def test_a_stop_signal_marks_every_worker_as_stopped_by_the_master_at_once() -> None:
    # granian's master calls a worker that exits before it was stopped by the master crashed
    # (exit code 1); on a stop to the whole group, an idle worker can end that soon
    from granian.server.common import AbstractWorker

    class Server:  # the shape of granian's server: the handler is its bound method
        def __init__(self) -> None:
            self.wrks = [AbstractWorker.__new__(AbstractWorker) for _ in range(2)]
            for worker in self.wrks:
                worker.interrupt_by_parent = False

        def signal_handler_interrupt(self, *_args: object) -> None:
            pass

    server = Server()
    appserver.mark_workers_stopping(server.signal_handler_interrupt)
    assert [w.interrupt_by_parent for w in server.wrks] == [True, True]
