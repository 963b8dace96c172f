"""`waymark seed-demo`: a demo user and a public demo map, made offline from package data."""

from __future__ import annotations

import secrets
from importlib.resources import files

from sqlalchemy import select

from waymark.accounts.service import create_user
from waymark.db.engine import Database
from waymark.db.models import Map, User
from waymark.formats import read
from waymark.maps.imports import import_result
from waymark.maps.service import create_map

DEMO_EMAIL = "demo@waymark.invalid"
DEMO_TITLE = "Welcome to Waymark"


def seed_demo(db: Database) -> tuple[str, str | None]:
    """Create the demo map if it is missing. Returns (map id, demo password if new user)."""
    password = None
    with db.write() as s:
        user = s.scalar(select(User).where(User.email == DEMO_EMAIL))
        if user is None:
            password = secrets.token_urlsafe(12)
            user = create_user(s, DEMO_EMAIL, password, "Demo")
        existing = s.scalar(select(Map).where(Map.owner_id == user.id, Map.title == DEMO_TITLE,
                                              Map.deleted_at.is_(None)))
        if existing is not None:
            return existing.public_id, password
        map_ = create_map(s, user.id, {
            "title": DEMO_TITLE, "visibility": "public",
            "description": "A few places, a walk and a park in Edinburgh. Click a pin or the walk "
                           "to read about it; sign up to make a map of your own.",
            "default_view": {"lat": 55.9486, "lon": -3.1999, "zoom": 13}}, with_default_layer=False)
        map_id, public_id, uid = map_.id, map_.public_id, user.id
    data = files("waymark.demo").joinpath("edinburgh.geojson").read_bytes()
    import_result(db, map_id, read(data, "geojson"), uid, default_name="Edinburgh walk")
    return public_id, password
