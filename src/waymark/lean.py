"""Libraries a server process never uses, kept out of its memory.

structlog imports rich (and with it pygments) for coloured console tracebacks whenever rich
is installed -- it is, for litestar's command line -- and httpx imports pygments for its
command line: about 5 MB (PSS) in every process of `waymark serve` (bench/memory.py). Our logs are JSON lines with plain-text tracebacks
(observability/logging.py), so none of it is used. ``sys.modules[name] = None`` is Python's
documented way to stop an import (structlog then falls back to plain tracebacks, httpx goes
without its command line). Called
first thing by the `serve` process, granian's master (its workers are forked from it) and
the job worker -- never by tests or other commands, which may want rich.
"""

from __future__ import annotations

import sys

CONSOLE_ONLY = ("rich", "pygments")


def skip_console_libraries() -> None:
    for name in CONSOLE_ONLY:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
