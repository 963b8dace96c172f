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
   Before it starts that thread it marks every worker as stopped by the master
   (`mark_workers_stopping`): an idle worker that got the group's SIGTERM itself could end
   before the thread ran, and the master then counted it as crashed (exit code 1).

The master also makes the app before it forks the workers (`preload`): they start with it
built, sharing its pages with the master until they write to them; and, with
`--waymark-job-worker`, it forks the job worker from there too (`fork_job_worker`), which
shares the database and logging libraries the same way (decision 0025).

Both fixes touch granian internals (`granian.server.common.set_main_signals`, the workers'
`interrupt_by_parent`, reached through
waymark/private_apis.py); a granian upgrade that moves them fails at start, not silently
(tests/unit/test_private_apis.py, tests/unit/test_stop_signals.py).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waymark.private_apis import granian_master_signals

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
JOB_WORKER_FLAG = "--waymark-job-worker"  # ours: taken off the command line before granian's
JOB_WORKER_NAME = "waymark-jobs"  # its /proc/<pid>/comm (ops/process_metrics.py: role "jobs")
PR_SET_PDEATHSIG = 1
job_workers: list[int] = []  # in the master: the job worker forked by fork_job_worker


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
        def on_interrupt(signum: int, frame: Any) -> None:
            interrupt_handler(signum, frame)
            signal_job_worker(signum)  # it stops along with the app workers

        stop_later = off_the_main_thread(on_interrupt)

        def on_stop_signal(signum: int, frame: Any) -> None:
            mark_workers_stopping(interrupt_handler)
            stop_later(signum, frame)

        original(on_stop_signal, off_the_main_thread(reload_handler) if reload_handler else None)

    common.set_main_signals = set_main_signals
    os.register_at_fork(after_in_child=default_stop_signals)


def mark_workers_stopping(interrupt_handler: Callable[..., Any]) -> None:
    """At once, in the signal handler: granian's master counts a worker that exits before
    the master itself stops it as crashed (exit code 1). On a stop signal to the whole
    group an idle worker stops by itself within milliseconds -- sooner, on a busy machine,
    than the master's own handler thread gets to run -- so every worker is marked as
    stopped by the master before that thread starts (a plain attribute, no lock)."""
    server = getattr(interrupt_handler, "__self__", None)  # granian's server object
    for worker in getattr(server, "wrks", ()):
        worker.interrupt_by_parent = True


def preload(argv: list[str]) -> None:
    """Import the ASGI target (``module:app``, the last argument) here, in the master,
    before granian forks the workers: they find the app made and share its pages (modules,
    code, the app; asgi.py moves them out of the collector's reach) with the master and
    each other until they write to them: 15 MB less with 2 workers (bench/memory.py). Making
    the app starts no thread and opens no file or socket -- its lifespan does, in each
    worker (tests/unit/test_process_imports.py). With ``--reload`` each worker imports the
    code afresh: nothing is preloaded."""
    if "--reload" in argv:
        return
    importlib.import_module(argv[-1].partition(":")[0])


def fork_job_worker() -> None:
    """`waymark worker` as a child of this master, forked after `preload` and before
    granian starts (one thread, no socket yet): it shares the preloaded libraries
    (SQLAlchemy, logging, metrics, cryptography) -- about 20 MB less than its own
    interpreter. A stop signal to this master reaches it (`install`); it ends with the
    master (PR_SET_PDEATHSIG), which waits for it (`stop_job_worker`)."""
    master = os.getpid()
    pid = os.fork()
    if pid:
        job_workers.append(pid)
        return
    code = 1
    try:
        Path("/proc/self/comm").write_text(JOB_WORKER_NAME)
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != master:
            return  # the master died before the line above
        from waymark.cli import main as cli

        cli(["worker"], prog_name="waymark")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - said here: os._exit below would swallow it
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)  # never back into the master's code (granian, its atexit hooks)


def signal_job_worker(signum: int) -> None:
    for pid in job_workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def stop_job_worker() -> None:
    """Once granian has stopped: the job worker too (a stop signal has reached it
    already, unless granian ended by itself), and this process waits for it to end."""
    for pid in job_workers:
        with contextlib.suppress(ChildProcessError):  # ended and reaped already
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)


def main() -> None:
    from waymark.lean import skip_console_libraries

    skip_console_libraries()  # before granian loads our logging set-up (structlog)
    install()
    job_worker = JOB_WORKER_FLAG in sys.argv
    if job_worker:
        sys.argv.remove(JOB_WORKER_FLAG)
    preload(sys.argv[1:])
    if job_worker:
        fork_job_worker()
    from granian.cli import entrypoint

    try:
        entrypoint()
    finally:
        stop_job_worker()


if __name__ == "__main__":
    main()
