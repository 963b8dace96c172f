"""The internals of third-party packages that Waymark relies on, reached from here only.

A private or internal name can change in any release of its package. Each one is imported by
one function of this module, which says who uses it and why, and
tests/unit/test_private_apis.py checks it against the installed version: when a dependency
moves one, that test fails naming the package, its version and the name that moved
(decision 0021). The functions return the modules untyped (`Any`): we patch them.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any


def granian_worker_signals() -> Any:
    """`granian._signals`, or None without granian. A granian worker calls its
    `set_loop_signals(loop)` (imported when the worker starts) to install the stop-signal
    handlers of its event loop; realtime/shutdown.py wraps it to close websockets first
    (decision 0017)."""
    try:
        from granian import _signals
    except ImportError:
        return None
    return _signals


def granian_master_signals() -> Any:
    """`granian.server.common`: the master process calls its `set_main_signals(interrupt,
    reload)`; appserver.py wraps it so that a stop signal never blocks the master."""
    from granian.server import common

    return common


def version_of(package: str) -> str:
    """"granian 2.8.7": for messages about an internal that moved."""
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{package} (not installed)"
