"""Redis, caching and sessions (moving to backends/)."""
