"""Backends of what WAYMARK_REDIS_URL switches: channels, presence, counters, cache and
sessions, behind the protocols of protocols.py; memory.py in process, redis/ shared."""
