"""Read-only (maintenance) mode in one app process, on SQLite and PostgreSQL: the CLI switch,
the 503 on every write path, and reads, pages and snapshots still served.
(Across two processes: tests/integration/test_read_only_processes.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from waymark.cli import main

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
EMPTY_COLLECTION = b'{"type":"FeatureCollection","features":[]}'
MESSAGE = "Moving to a bigger database, back at 14:00 UTC."


def cli(app: Any, *args: str) -> str:
    settings = app.state.services.settings
    result = CliRunner().invoke(main, list(args), env={
        "WAYMARK_DATABASE_URL": settings.resolved_database_url,
        "WAYMARK_DATA_DIR": str(settings.data_dir)})
    assert result.exit_code == 0, result.output
    app.state.services.read_only.invalidate()  # this process's one-second view, refreshed now
    return result.output


def assert_read_only(response: Any, retry_after: int = 300) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(retry_after)
    error = response.json()["error"]
    assert error["code"] == "read_only" and error["message"] == MESSAGE
    assert error["details"]["retry_after"] == retry_after and error["details"]["since"]


def test_writes_refused_reads_served_and_back(db_app, db_clients) -> None:  # type: ignore[no-untyped-def]
    alice = db_clients()
    alice.signup("alice@example.com")
    m = alice.create_map("Walks", visibility="public")
    layer = m["layers"][0]["id"]
    base = f"/api/v1/maps/{m['id']}/layers/{layer}"
    r = alice.post(base + "/features", json={"geometry": POINT, "properties": {"n": 1}})
    assert r.status_code == 201
    feature = r.json()
    token = alice.post("/api/v1/tokens", json={"name": "script", "scope": "write"}).json()["token"]
    snapshot_url = alice.get(f"/api/v1/maps/{m['id']}").json()["layers"][0]["data_url"]

    out = cli(db_app, "maintenance", "on", "--message", MESSAGE)
    assert "read-only mode ON" in out and MESSAGE in out
    assert "ON since" in cli(db_app, "maintenance", "status")

    # every kind of write, with a session or a token: 503 in the one error format
    assert_read_only(alice.post(base + "/features", json={"geometry": POINT}))
    assert_read_only(alice.patch(f"{base}/features/{feature['id']}",
                                 json={"properties": {"n": 2}}))
    assert_read_only(alice.delete(f"{base}/features/{feature['id']}"))
    assert_read_only(alice.patch(f"/api/v1/maps/{m['id']}", json={"title": "Renamed"}))
    assert_read_only(alice.post("/api/v1/maps", json={"title": "New"}))
    assert_read_only(alice.post(f"/api/v1/maps/{m['id']}/import",
                                files={"file": ("a.geojson", EMPTY_COLLECTION)}))
    bot = db_clients()
    assert_read_only(bot.client.post(f"/api/v1/maps/{m['id']}/layers", json={"name": "x"},
                                     headers={"Authorization": f"Bearer {token}"}))
    assert_read_only(db_clients().client.post("/api/v1/auth/signup", json={
        "email": "new@example.com", "password": "correct horse battery staple"}))

    # reads, pages, embeds, data and exports keep working; nothing changed
    assert alice.get(f"{base}/features/{feature['id']}").json()["properties"] == {"n": 1}
    assert alice.get(f"/api/v1/maps/{m['id']}").json()["title"] == "Walks"
    anon = db_clients()
    data = anon.get(snapshot_url)
    assert data.status_code == 200 and len(data.json()["features"]) == 1
    assert anon.get(f"/api/v1/maps/{m['id']}/export?format=geojson").status_code == 200
    embed = anon.get(f"/m/{m['id']}/embed")
    assert embed.status_code == 200
    # log-in still works (people read their private maps during a long maintenance)
    again = db_clients()
    assert again.login("alice@example.com").status_code == 200
    page = again.get(f"/m/{m['id']}").text
    assert "Read-only for maintenance." in page and MESSAGE in page
    assert 'data-read-only="1"' in page and 'id="draw-toolbar"' not in page
    assert "Read-only for maintenance." in again.get("/dashboard").text

    assert "read-only mode OFF" in cli(db_app, "maintenance", "off")
    assert "off" in cli(db_app, "maintenance", "status")
    r = alice.patch(f"{base}/features/{feature['id']}", json={"properties": {"n": 2}})
    assert r.status_code == 200, r.text
    page = again.get(f"/m/{m['id']}").text
    assert "Read-only for maintenance." not in page and 'id="draw-toolbar"' in page
    assert "was not on" in cli(db_app, "maintenance", "off")


def test_websocket_edit_refused_while_read_only(app, alice) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Live", visibility="public")
    layer = m["layers"][0]["id"]
    cli(app, "maintenance", "on", "--message", MESSAGE, "--retry-after", "120")
    with alice.client.websocket_connect(f"/api/v1/maps/{m['id']}/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["read_only"] == MESSAGE
        ws.send_json({"type": "edit", "ref": "r1", "layer": layer, "op": "create",
                      "geometry": POINT})
        while (msg := ws.receive_json())["type"] != "error":
            pass
        assert msg["ref"] == "r1" and msg["status"] == 503
        assert msg["error"]["code"] == "read_only" and msg["error"]["message"] == MESSAGE
    assert alice.get(f"/api/v1/maps/{m['id']}/layers/{layer}/data").json()["features"] == []


def test_queued_import_waits_instead_of_failing(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    """An import accepted before the switch stays queued (re-scheduled), it does not fail."""
    from tests.conftest import make_settings
    from waymark.db.engine import Database
    from waymark.db.models import Job
    from waymark.jobs.queue import READ_ONLY_RETRY_SECONDS, Runtime, make_huey, set_runtime
    from waymark.maintenance.mode import switch_on
    from waymark.storage import open_store

    settings = make_settings(tmp_path, sqlite_url, jobs_immediate=False)
    db = Database(sqlite_url)
    huey = make_huey(settings)
    set_runtime(huey, Runtime(settings, db, open_store("memory://")))
    with db.write() as s:
        s.add(Job(public_id="job-1", kind="import", status="queued", params="{}"))
    switch_on(db, MESSAGE)
    huey.import_task.call_local("job-1")
    with db.read() as s:
        assert s.query(Job).filter_by(public_id="job-1").one().status == "queued"
    pending = huey.pending()  # queued again, to run READ_ONLY_RETRY_SECONDS from now
    assert [(t.name, t.args) for t in pending] == [("import", ("job-1",))]
    wait = (pending[0].eta - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
    assert 0 < wait <= READ_ONLY_RETRY_SECONDS
    db.dispose()


def test_cli_import_refused_while_read_only(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli(app, "maintenance", "on", "--message", MESSAGE)
    path = tmp_path / "a.geojson"
    path.write_text('{"type":"FeatureCollection","features":[]}')
    settings = app.state.services.settings
    result = CliRunner().invoke(main, ["import", str(path), "--owner", "x@example.com"], env={
        "WAYMARK_DATABASE_URL": settings.resolved_database_url})
    assert result.exit_code == 1 and "read-only" in result.output and MESSAGE in result.output


@pytest.mark.parametrize("command", [
    ["user", "create", "new@example.com", "--password", "correct horse battery staple"],
    ["user", "disable", "keep@example.com"],
    ["user", "set-admin", "keep@example.com"],
    ["user", "reset-password", "keep@example.com"],
    ["user", "delete", "keep@example.com", "--maps", "trash", "--yes"],
], ids=lambda c: " ".join(c[:2]))
def test_cli_writes_refused_while_read_only(app, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The command line obeys read-only mode as HTTP does: a copy of the database taken now
    must not miss a change made by a command."""
    from sqlalchemy import func, select

    from waymark.db.models import Map, User

    settings = app.state.services.settings
    env = {"WAYMARK_DATABASE_URL": settings.resolved_database_url,
           "WAYMARK_DATA_DIR": str(settings.data_dir)}
    created = CliRunner().invoke(main, ["user", "create", "keep@example.com", "--password",
                                        "correct horse battery staple"], env=env)
    assert created.exit_code == 0, created.output
    db = app.state.services.db
    with db.read() as s:
        before = s.execute(select(User.email, User.disabled_at, User.is_admin, User.password_hash)).all()
        maps_before = s.scalar(select(func.count()).select_from(Map))
    cli(app, "maintenance", "on", "--message", MESSAGE)
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 1, result.output
    assert "read-only" in result.output and MESSAGE in result.output
    assert "waymark maintenance off" in result.output
    with db.read() as s:  # nothing changed
        assert s.execute(select(User.email, User.disabled_at, User.is_admin, User.password_hash)).all() == before
        assert s.scalar(select(func.count()).select_from(Map)) == maps_before


def test_seed_demo_writes_nothing_while_read_only_and_lets_serve_start(app) -> None:  # type: ignore[no-untyped-def]
    """`serve` seeds the demo map at start; a database move starts the new instance while still
    read-only, so the seeding steps aside (exit 0, a message) instead of writing or failing."""
    from sqlalchemy import func, select

    from waymark.db.models import Map, User

    settings = app.state.services.settings
    env = {"WAYMARK_DATABASE_URL": settings.resolved_database_url,
           "WAYMARK_DATA_DIR": str(settings.data_dir)}
    cli(app, "maintenance", "on", "--message", MESSAGE)
    result = CliRunner().invoke(main, ["seed-demo", "--no-migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert "demo map not checked" in result.output and MESSAGE in result.output
    with app.state.services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert s.scalar(select(func.count()).select_from(Map)) == 0
    cli(app, "maintenance", "off")
    result = CliRunner().invoke(main, ["seed-demo", "--no-migrate"], env=env)
    assert result.exit_code == 0 and "demo map: " in result.output, result.output


@pytest.mark.parametrize("retry_after", ["0", "-5"])
def test_retry_after_must_be_positive(app, retry_after: str) -> None:  # type: ignore[no-untyped-def]
    settings = app.state.services.settings
    result = CliRunner().invoke(main, ["maintenance", "on", "--retry-after", retry_after],
                                env={"WAYMARK_DATABASE_URL": settings.resolved_database_url})
    assert result.exit_code == 2 and "--retry-after" in result.output
