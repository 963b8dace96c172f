"""The job queue (Huey): SQLite storage by default, Redis when WAYMARK_REDIS_URL is set."""
