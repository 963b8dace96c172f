"""Rate-limit counters shared by every process through Redis (the `Counters` protocol)."""

from __future__ import annotations

from typing import Any

from waymark.backends.redis.hub import RedisHub


class RedisCounters:
    def __init__(self, hub: RedisHub) -> None:
        self.hub = hub

    async def take(self, key: str, amount: int, ttl: int) -> int:
        """Add ``amount`` to the counter ``key`` (expiring ``ttl`` s after it was made); its
        new value. RedisUnavailable while Redis is degraded."""
        redis_key = self.hub.key("rl", key)

        async def run(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.incrby(redis_key, amount)
            pipe.expire(redis_key, ttl, nx=True)
            return await pipe.execute()

        return int((await self.hub.run(run))[0])
