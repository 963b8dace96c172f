"""The rate-limit rules: WAYMARK_RATE_LIMITS parsed into classes, limits and windows, and
the trusted proxy networks. Apart from the limiter (ratelimit/limiter.py), so validating the
settings imports neither the metrics nor Redis."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_LIMITS = ("login=10/minute,signup=5/hour,write=600/minute,upload=30/hour,"
                  "anon_read=3000/minute,ws_message=120/minute,reset=10/hour,"
                  "reset_address=3/hour,search=120/minute")
CLASSES = ("login", "signup", "write", "upload", "anon_read", "ws_message", "reset",
           "reset_address", "search")
UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
         "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window: int  # seconds

    @property
    def slice(self) -> int:
        return max(1, self.limit // 100)


def parse_rules(spec: str) -> dict[str, Rule]:
    """Defaults overridden by `spec`; raises ValueError naming the bad item."""
    rules: dict[str, Rule | None] = {}
    for source in (DEFAULT_LIMITS, spec or ""):
        for item in filter(None, (p.strip() for p in source.split(","))):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in CLASSES:
                raise ValueError(f"rate limit class {name!r} is not one of {', '.join(CLASSES)}")
            value = value.strip().lower()
            if value in ("off", "none", "0"):
                rules[name] = None
                continue
            m = re.fullmatch(r"(\d+)\s*/\s*(\d*)\s*([a-z]+)", value)
            if not m or m.group(3) not in UNITS:
                raise ValueError(f"rate limit {item!r}: use N/second|minute|hour|day or N/30s")
            window = int(m.group(2) or 1) * UNITS[m.group(3)]
            rules[name] = Rule(name, int(m.group(1)), window)
    return {k: v for k, v in rules.items() if v is not None}


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p.strip(), strict=False) for p in (spec or "").split(",")
            if p.strip()]
