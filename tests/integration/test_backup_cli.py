"""The runbook commands themselves (docs/operations/backup.md, restore.md), run through the
CLI on a file:// backup target: `waymark keys list|rotate [--retire-old]`,
`waymark backup objects|restore-objects|config|retention|archive-get|config-file`, and the
refusals of `waymark restore`. Real files, a real SQLite database, real encryption."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from tests.conftest import ApiClient
from waymark.app import create_app
from waymark.cli import main
from waymark.settings import load_settings
from waymark.storage import open_store
from waymark.storage.crypto import MAGIC, DecryptionError, key_id_of, open_object_store

SECRET = "cli-test-secret-key-that-must-never-be-backed-up"


@pytest.fixture
def env(tmp_path, sqlite_url, monkeypatch):  # type: ignore[no-untyped-def]
    for key in list(os.environ):
        if key.startswith("WAYMARK_"):
            monkeypatch.delenv(key)
    values = {"WAYMARK_DATA_DIR": str(tmp_path / "var"), "WAYMARK_DATABASE_URL": sqlite_url,
              "WAYMARK_BACKUP_URL": f"file://{tmp_path}/backup", "WAYMARK_SECRET_KEY": SECRET,
              "WAYMARK_DEMO_DATA": "false", "WAYMARK_TRASH_DAYS": "0",
              "WAYMARK_SNAPSHOT_DELAY_MS": "600000"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def waymark(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_keys_rotate_and_object_backup_round_trip(env, tmp_path):
    settings = load_settings()
    store = open_object_store(settings)
    payloads = {f"uploads/m1/u{i}/f.geojson": f"private upload {i}".encode() for i in range(3)}
    for key, data in payloads.items():
        store.put_sync(key, data)
    raw = open_store(settings.resolved_object_store_url)
    first = key_id_of(raw.get_sync("uploads/m1/u0/f.geojson"))

    listed = waymark("keys", "list").output.split()
    assert listed == ["*", first]

    out = waymark("backup", "objects").output
    assert "3 scanned, 3 copied" in out
    assert "0 copied" in waymark("backup", "objects").output  # incremental
    backup = open_store(f"file://{tmp_path}/backup/objects")
    assert all(backup.get_sync(k).startswith(MAGIC) for k in payloads)  # ciphertext

    out = waymark("keys", "rotate").output
    assert "objects: 3 objects, 3 re-wrapped" in out
    assert "object backup: 3 objects, 3 re-wrapped" in out
    second = next(line.split()[-1] for line in waymark("keys", "list").output.splitlines()
                  if line.startswith("*"))
    assert second != first
    assert {key_id_of(raw.get_sync(k)) for k in payloads} == {second}
    assert {key_id_of(backup.get_sync(k)) for k in payloads} == {second}

    out = waymark("keys", "rotate", "--retire-old").output
    assert "retired" in out and first in out and second in out
    assert len(waymark("keys", "list").output.splitlines()) == 1
    fresh = open_object_store(load_settings())  # a new process: only the newest key exists
    assert {k: fresh.get_sync(k) for k in payloads} == payloads

    # primary objects lost: back from the object backup, still readable
    for key in payloads:
        raw.delete_sync(key)
    out = waymark("backup", "restore-objects").output
    assert "3 restored" in out and "0 errors" in out
    assert {k: fresh.get_sync(k) for k in payloads} == payloads

    # the master key lost: the objects cannot be read (a new key cannot open them)
    key_file = settings.resolved_master_key_path
    shutil.move(key_file, tmp_path / "master.key.away")
    with pytest.raises(DecryptionError, match="not in"):
        open_object_store(load_settings()).get_sync("uploads/m1/u0/f.geojson")


def test_config_backup_retention_and_archive_get(env, tmp_path):
    settings = load_settings()
    app = create_app(settings)
    with TestClient(app) as tc:
        client = ApiClient(tc)
        client.signup("cli@example.com")
        m = client.create_map("to be archived")
        layer = client.get(f"/api/v1/maps/{m['id']}/layers").json()[0]["id"]
        r = client.post(f"/api/v1/maps/{m['id']}/layers/{layer}/features",
                        json={"geometry": {"type": "Point", "coordinates": [5, 6]},
                              "properties": {"name": "kept in the archive"}})
        assert r.status_code == 201, r.text
        assert client.delete(f"/api/v1/maps/{m['id']}").status_code == 204
    app.state.services.db.dispose()

    out = waymark("backup", "config").output
    assert out.startswith(f"wrote file://{tmp_path}/backup/config/")
    doc = json.loads((tmp_path / "backup" / "config" / "latest.json").read_text())
    assert SECRET not in json.dumps(doc) and doc["schema_revision"] == doc["schema_head"]

    report = json.loads(waymark("backup", "retention").output)  # WAYMARK_TRASH_DAYS=0
    assert report["maps_archived"] == [m["id"]]
    archived = [p for p in (tmp_path / "backup" / "archive" / "maps" / m["id"]).iterdir()]
    assert len(archived) == 1 and archived[0].read_bytes().startswith(MAGIC)
    target = tmp_path / "map.json"
    waymark("backup", "archive-get", f"maps/{m['id']}/{archived[0].name}", "-o", str(target))
    bundle = json.loads(target.read_bytes())
    assert bundle["map"]["title"] == "to be archived" and "archived" not in bundle
    assert bundle["layers"][0]["features"][0]["properties"] == {"name": "kept in the archive"}
    assert json.loads(waymark("backup", "retention").output)["maps_archived"] == []

    # the owner gets the map back: the decrypted bundle re-imports as a new map
    app = create_app(load_settings())
    with TestClient(app) as tc:
        client = ApiClient(tc)
        client.login("cli@example.com")
        r = client.post("/api/v1/maps/import-bundle",
                        files={"file": ("map.json", target.read_bytes(), "application/json")})
        assert r.status_code == 201, r.text
        new_id = r.json()["id"]
        assert new_id != m["id"] and r.json()["imported"] == 1
        layer = client.get(f"/api/v1/maps/{new_id}/layers").json()[0]["id"]
        feats = client.get(f"/api/v1/maps/{new_id}/layers/{layer}/features").json()["features"]
        assert [f["properties"] for f in feats] == [{"name": "kept in the archive"}]
    app.state.services.db.dispose()


def test_restore_refusals_change_nothing(env, tmp_path):
    live = Path(env["WAYMARK_DATABASE_URL"].split(":///", 1)[1])
    before = live.read_bytes()
    refused = waymark("restore", ok=False)
    assert refused.exit_code != 0
    assert "refusing to overwrite the live database" in refused.output
    bad = waymark("restore", "--to-time", "yesterday-ish", "--output", str(tmp_path / "x.db"),
                  ok=False)
    assert bad.exit_code != 0 and "is not an ISO-8601 time" in bad.output
    assert not (tmp_path / "x.db").exists() and live.read_bytes() == before

    generated = waymark("backup", "config-file").output
    assert f"path: {tmp_path}/backup/db" in generated and "l0-retention: 1445m" in generated
