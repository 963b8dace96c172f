"""The geocoding service of the app: the configured provider, plus — for remote services —
a rate limit on what we send them (one process-wide token bucket) and a cache of their
answers (the app's two-level cache: this process, then Redis), so popular searches cost the
service nothing and a burst of users never exceeds its usage policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from waymark import jsonutil
from waymark.errors import ApiError
from waymark.geocode.gazetteer import Gazetteer
from waymark.geocode.model import Geocoder, Place, fold

MAX_WAIT = 2.0  # seconds a search may wait for its turn at the remote service


class GeocoderBusy(ApiError):
    status_code = 429
    code = "geocoder_busy"


class Pacer:
    """At most `rate` calls per second; a caller waits for its slot up to MAX_WAIT."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / max(rate, 1)
        self.next_slot = 0.0
        self.clock = clock

    def reserve(self) -> float:
        """Take the next free slot; the seconds to wait for it (GeocoderBusy if too long)."""
        now = self.clock()
        slot = max(now, self.next_slot)
        if slot - now > MAX_WAIT:
            raise GeocoderBusy("too many place searches right now; try again in a moment",
                               headers={"Retry-After": str(int(slot - now) + 1)})
        self.next_slot = slot + self.interval
        return slot - now

    async def turn(self) -> None:
        await asyncio.sleep(self.reserve())  # reserve() runs without awaiting: no lock needed


class Geocoding:
    def __init__(self, provider: Geocoder, cache: Any = None, *, rate: int = 1,
                 cache_seconds: int = 86400) -> None:
        self.provider = provider
        self.cache = cache if not isinstance(provider, Gazetteer) else None
        self.pacer = Pacer(rate) if not isinstance(provider, Gazetteer) else None
        self.cache_seconds = cache_seconds

    async def search(self, query: str, limit: int) -> list[Place]:
        key = f"geocode:{self.provider.name}:{limit}:{fold(query)}"
        if self.cache is not None:
            hit = await self.cache.get(key)
            if hit is not None:
                stored = jsonutil.loads(hit)
                if time.time() - stored["at"] < self.cache_seconds:
                    return [Place(**{**p, "bbox": tuple(p["bbox"]) if p["bbox"] else None})
                            for p in stored["places"]]
        if self.pacer is not None:
            await self.pacer.turn()
        places = await self.provider.search(query, limit)
        if self.cache is not None:
            await self.cache.put(key, jsonutil.dumpb({"at": time.time(),
                                                      "places": [p.json() for p in places]}))
        return places


def make_geocoding(settings: Any, cache: Any, gazetteer_path: Any) -> Geocoding:
    if settings.geocoder in ("nominatim", "photon"):
        # httpx (about 4 MB per process) only when a remote service is configured
        from waymark.geocode.remote import Nominatim, Photon

        remote = Nominatim if settings.geocoder == "nominatim" else Photon
        provider: Geocoder = remote(settings.geocoder_url)
    else:
        provider = Gazetteer(gazetteer_path)
    return Geocoding(provider, cache, rate=settings.geocoder_rate_per_second,
                     cache_seconds=settings.geocoder_cache_seconds)
