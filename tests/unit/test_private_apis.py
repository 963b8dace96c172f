"""The third-party internals that waymark/private_apis.py reaches are still there, in the
shape we use. When a dependency upgrade moves one, these fail naming the package and its
version, and the module of ours that depends on it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from waymark import private_apis

SRC = Path(private_apis.__file__).resolve().parent


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_granian_worker_loop_signals() -> None:
    granian = private_apis.version_of("granian")
    signals = private_apis.granian_worker_signals()
    assert signals is not None, f"{granian}: granian._signals does not import"
    hook = getattr(signals, "set_loop_signals", None)
    assert callable(hook), (f"{granian}: granian._signals.set_loop_signals is gone; "
                            "realtime/shutdown.py wraps it to close websockets on stop")
    assert _params(hook) == ["loop"], (
        f"{granian}: granian._signals.set_loop_signals{inspect.signature(hook)} changed "
        "(realtime/shutdown.py calls it with the event loop)")
    # The wrapper only works while workers look the function up when they start, from the
    # module, rather than keeping a reference taken at import time.
    from granian.server import mp

    source = inspect.getsource(mp)
    worker_import = re.compile(r"^\s+from granian\._signals import set_loop_signals$", re.MULTILINE)
    assert worker_import.search(source), (
        f"{granian}: granian.server.mp no longer imports set_loop_signals when a worker "
        "starts; realtime/shutdown.py's wrapper would not be called")


def test_granian_master_signals() -> None:
    granian = private_apis.version_of("granian")
    common = private_apis.granian_master_signals()
    hook = getattr(common, "set_main_signals", None)
    assert callable(hook), (f"{granian}: granian.server.common.set_main_signals is gone; "
                            "appserver.py wraps it")
    assert _params(hook)[:2] == ["interrupt_handler", "reload_handler"], (
        f"{granian}: granian.server.common.set_main_signals{inspect.signature(hook)} changed "
        "(appserver.py passes the interrupt and reload handlers)")
    # appserver.mark_workers_stopping: the server's `wrks`, each worker's `interrupt_by_parent`
    for cls, name in ((common.AbstractServer, "self.wrks"),
                      (common.AbstractWorker, "self.interrupt_by_parent")):
        assert name in inspect.getsource(cls), (
            f"{granian}: granian.server.common.{cls.__name__} has no {name} any more "
            "(appserver.mark_workers_stopping sets it on a stop signal)")


def test_no_private_import_outside_private_apis() -> None:
    """Third-party internals are imported in waymark/private_apis.py only."""
    private = re.compile(r"^\s*(from\s+(?!waymark\b)[A-Za-z][\w.]*\._[\w.]*\s+import|"
                         r"from\s+(?!waymark\b)[A-Za-z][\w.]*\s+import\s+\(?\s*_[a-z]\w*|"
                         r"import\s+(?!waymark\b)[A-Za-z][\w.]*\._\w*)", re.MULTILINE)
    found = [f"{path.relative_to(SRC)}: {m.group(0).strip()}"
             for path in SRC.rglob("*.py") if path.name != "private_apis.py"
             for m in private.finditer(path.read_text())]
    assert found == [], found
