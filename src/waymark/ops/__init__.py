"""WAYMARK_REDIS_URL parsing and the Redis clients (the backends are in backends/)."""
