"""create_app is pure: two apps built in one process, with different settings, each behave
by their own settings -- also the one built first, after the second was built (nothing is
kept in module globals: trash days, the job runtime, rate limits, basemaps, data dirs)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.test_import_api import upload, wait_publisher_idle
from tests.conftest import PASSWORD, ApiClient, make_settings
from waymark.app import create_app


def _app(base: Path, template: Path, **overrides: Any) -> Litestar:
    base.mkdir()
    db = base / "waymark.db"
    shutil.copyfile(template, db)
    return create_app(make_settings(base, f"sqlite:///{db}", snapshot_delay_ms=0,
                                    import_job_bytes=200, **overrides))


@pytest.fixture
def two_apps(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[ApiClient, ApiClient]]:
    first = _app(tmp_path / "a", sqlite_template, trash_days=3, rate_limits="login=2/minute",
                 basemap_url="https://tiles.first.example/{z}/{x}/{y}.png")
    second = _app(tmp_path / "b", sqlite_template, trash_days=40)  # built after the first
    with TestClient(first) as a, TestClient(second) as b:
        yield ApiClient(a), ApiClient(b)
    for app in (first, second):
        wait_publisher_idle(app)
        app.state.services.db.dispose()


def _purge_delay(client: ApiClient, title: str) -> timedelta:
    m = client.create_map(title)
    assert client.delete(f"/api/v1/maps/{m['id']}").status_code == 204
    [item] = client.get("/api/v1/maps?scope=trash").json()
    return (datetime.fromisoformat(item["purge_after"])
            - datetime.fromisoformat(item["deleted_at"]))


def _import_as_job(client: ApiClient, points: int) -> tuple[dict[str, Any], int]:
    """A GeoJSON upload above import_job_bytes: a job on the app's own queue (immediate)."""
    m = client.create_map("imported")
    layer_url = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    data = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [i, i]},
         "properties": {"i": i}} for i in range(points)]}).encode()
    r = upload(client, layer_url + "/import", "points.geojson", data)
    assert r.status_code == 202, r.text  # above import_job_bytes: queued as a job
    job = client.get(r.json()["job"]["url"]).json()
    return job, client.get(layer_url).json()["feature_count"]


def test_two_apps_in_one_process_each_follow_their_own_settings(two_apps) -> None:  # type: ignore[no-untyped-def]
    a, b = two_apps
    a.signup("ann@example.com")
    b.signup("ben@example.com")

    # trash days: each app's own WAYMARK_TRASH_DAYS (not the last one built)
    assert _purge_delay(a, "gone from a") == timedelta(days=3)
    assert _purge_delay(b, "gone from b") == timedelta(days=40)

    # jobs: each app's queue runs its jobs against its own database and object store
    job_a, count_a = _import_as_job(a, 12)
    job_b, count_b = _import_as_job(b, 30)
    assert (job_a["status"], count_a) == ("done", 12), job_a
    assert (job_b["status"], count_b) == ("done", 30), job_b

    # data dirs: each app sees its own maps and accounts only
    assert [m["title"] for m in a.get("/api/v1/maps?scope=mine").json()] == ["imported"]
    assert [m["title"] for m in b.get("/api/v1/maps?scope=mine").json()] == ["imported"]
    assert a.login("ben@example.com", PASSWORD).status_code == 401

    # rate limits: the first app allows 2 logins a minute, the second the default 10
    assert a.login("nobody@example.com", "wrong password").status_code == 401
    assert a.login("nobody@example.com", "wrong password").status_code == 429
    assert [b.login("nobody@example.com", "wrong password").status_code
            for _ in range(3)] == [401, 401, 401]

    # basemap presets: the first app's custom tiles are allowed in its pages' CSP only
    csp_a = a.get("/").headers["content-security-policy"]
    csp_b = b.get("/").headers["content-security-policy"]
    assert "https://tiles.first.example" in csp_a
    assert "tiles.first.example" not in csp_b
