"""Rate limits by route class: the rules (`rules.py`, parsed from WAYMARK_RATE_LIMITS)
and the limiter with its ASGI middleware (`limiter.py`)."""
