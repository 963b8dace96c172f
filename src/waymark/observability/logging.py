"""Structured logs: one JSON object per line on stdout, secrets removed.

Both structlog loggers (`get_logger`) and the standard library's `logging` (used across
the code base, and by libraries) go through the same processors, so every line carries
the timestamp, level, logger and, inside a request, its `request_id` (bound with
structlog's contextvars by observability/request_observer.py).

Redaction is by key (any key naming a password, token, secret, cookie, session, CSRF
or authorization value is replaced) and by pattern inside strings (`Bearer …`, `wmk_…`
API tokens, `password=…`-style pairs), including exception text and stack traces.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import time
from typing import Any

import msgspec
import structlog

REDACTED = "[redacted]"
_SENSITIVE_WORDS = ("password", "passwd", "secret", "token", "authorization", "cookie",
                    "session", "csrf", "api_key", "apikey", "dsn", "credential")
_SAFE_KEYS = frozenset({"event", "timestamp", "level", "logger", "request_id", "route",
                        "method", "path", "status", "duration_ms", "bytes", "user_id",
                        "exception", "slow", "client"})
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\bwmk_[A-Za-z0-9_-]{8,}"), "wmk_" + REDACTED),
    (re.compile(r"(?i)\b((?:[a-z_]*_)?(?:password|passwd|token|secret|session_?id|csrf_token|"
                r"api_?key|cookie)s?)(\s*[=:]\s*|\"\s*:\s*\"|'\s*:\s*')([^&\s\"',;]+)"),
     r"\1\2" + REDACTED),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
)


def is_sensitive_key(key: str) -> bool:
    low = key.lower()
    return any(word in low for word in _SENSITIVE_WORDS)


def scrub_text(text: str) -> str:
    """Remove credentials that may appear inside free text (messages, tracebacks)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with sensitive keys and embedded credentials redacted."""
    if isinstance(value, str):
        return scrub_text(value)
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_sensitive_key(k) and v
                    else scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, depth + 1) for v in value]
    return value


def redact_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        if key in _SAFE_KEYS:
            if isinstance(value, str) and key in ("event", "exception"):
                event_dict[key] = scrub_text(value)
            continue
        if is_sensitive_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, (str, dict, list, tuple)):
            event_dict[key] = scrub(value)
    return event_dict


def _drop_color_message(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.pop("color_message", None)
    return event_dict


_encoder = msgspec.json.Encoder(enc_hook=str)


def _serialize(obj: dict[str, Any], **_kw: Any) -> str:
    return _encoder.encode(obj).decode()


_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
_FINAL = [
    structlog.processors.format_exc_info,  # "exception": the full stack trace, as text
    redact_processor,
    _drop_color_message,
]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A logging.Formatter writing the same JSON lines (used for stdlib and granian logs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_FINAL,
                        structlog.processors.JSONRenderer(serializer=_serialize)],
            foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        )


_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
                logging.ERROR: "error", logging.CRITICAL: "critical"}


_second: tuple[int, str] = (0, "")  # the last whole second formatted, swapped as one value


def utc_timestamp(now: float) -> str:
    """`now` (time.time()) as ISO 8601 UTC with microseconds, like the other lines' stamps;
    the date and time part is formatted once per second (a datetime per line cost ~1.4 µs)."""
    global _second
    whole = int(now)
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{second[1]}.{min(round((now - whole) * 1_000_000), 999_999):06d}Z"


def format_line(level: int, logger: str, fields: dict[str, Any]) -> str:
    """One JSON line (newline included) in the shape of every other line, without the
    logging machinery: the access log's fast path. ``fields`` must hold no secrets."""
    record = {"event": fields.pop("event", ""), "level": _LEVEL_NAMES.get(level, "info"),
              "logger": logger, "timestamp": utc_timestamp(time.time()), **fields}
    return _encoder.encode(record).decode() + "\n"


class LineBuffer:
    """Lines written together, at most `flush_s` after the first (or at `max_bytes`), in one
    write instead of one write per line: with one access line per request, a write (and a
    flush to a pipe or file) per request showed in cached-read throughput (bench/RESULTS.md).
    What a crash can lose is the last `flush_s` of lines; `flush()` on shutdown.

    Meant for one event loop (the ASGI layer's; the lock covers tests running apps on
    several threads); a line from off a loop, or with flush_s <= 0, is written at once,
    after what is pending (lines keep their order)."""

    def __init__(self, flush_s: float, max_bytes: int = 64 * 1024) -> None:
        self.flush_s = flush_s
        self.max_bytes = max_bytes
        self.pending: list[str] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None
        self.lock = threading.RLock()

    def add(self, line: str, urgent: bool = False) -> None:
        with self.lock:
            self.pending.append(line)
            self.size += len(line)
            now = urgent or self.flush_s <= 0 or self.size >= self.max_bytes
            if not now and self.timer is None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # not on an event loop: nothing would flush it later
                    now = True
                else:
                    self.timer = loop.call_later(self.flush_s, self.flush)
            if now:
                self.flush()

    def flush(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if not self.pending:
                return
            text = "".join(self.pending)
            self.pending.clear()
            self.size = 0
            out = sys.stdout
            out.write(text)
            out.flush()


class _Stdout:
    """sys.stdout looked up at each write (test runners swap it; never hold a stale one)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


HANDLER_NAME = "waymark-json"


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """Route structlog and stdlib logging to JSON lines on stdout. Safe to call again."""
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or _Stdout())
    handler.setFormatter(JsonFormatter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("waymark").setLevel(numeric)


def get_logger(name: str = "waymark") -> Any:
    return structlog.get_logger(name)


__all__ = [
    "REDACTED",
    "JsonFormatter",
    "LineBuffer",
    "configure_logging",
    "format_line",
    "get_logger",
    "is_sensitive_key",
    "scrub",
    "scrub_text",
]
