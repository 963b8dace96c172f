"""The Redis backends (WAYMARK_REDIS_URL), all through one `RedisHub`."""
