"""The ASGI application for granian: settings come from WAYMARK_* variables."""

from waymark.app import create_app

app = create_app()
