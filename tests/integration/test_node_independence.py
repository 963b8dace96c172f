"""Two nodes, separate data dirs, one shared database and object store: every object written
by one is readable by the other (issue 15, item 1), on a shared directory, moto's S3 and
SeaweedFS, with SQLite and PostgreSQL.

Each node is the real app (create_app) with its own WAYMARK_DATA_DIR; the master key comes
from one key file both mount (WAYMARK_MASTER_KEY_FILE). Without it each node made its own
master.key and a private layer written through A answered 500 on B.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.cluster_servers import seaweedfs  # noqa: F401 - fixture
from tests.conftest import make_settings
from waymark.app import create_app
from waymark.db.models import utcnow
from waymark.maps.retention import archive_store, archive_trashed_maps
from waymark.settings import Settings
from waymark.storage import open_store
from waymark.storage.crypto import DecryptionError, is_encrypted, open_object_store, raw_store
from waymark.storage.keys_provider import LocalKeyFile

POINT = {"type": "Point", "coordinates": [-3.19, 55.95]}
WAYMARK = Path(sys.executable).parent / "waymark"


def _store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(object store URL, archive URL), shared by both nodes."""
    if kind == "local":
        return f"file://{tmp_path / 'shared-objects'}", f"file://{tmp_path / 'shared-archive'}"
    server = request.getfixturevalue("moto_server" if kind == "moto" else "seaweedfs")
    bucket = server.make_bucket(f"nodes-{os.getpid()}-{abs(hash(request.node.name)) % 10**8}")
    return server.url(bucket, "objects"), server.url(bucket, "archive")


class Node:
    """One app node: its own data dir, a client with an API token of the shared database."""

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self.app = create_app(settings)
        stack.callback(self.app.state.services.db.dispose)
        self.client = stack.enter_context(TestClient(self.app))
        self.token = ""

    def call(self, method: str, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.request(method, url, headers=headers, **kw)


@pytest.fixture(params=["local", "moto", "seaweedfs"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path, database_url: str
          ) -> Iterator[tuple[Node, Node]]:
    if request.param == "moto":
        request.applymarker(pytest.mark.s3)
    objects, archive = _store_url(request.param, tmp_path, request)
    key_file = tmp_path / "secret" / "master.key"
    LocalKeyFile(key_file)  # `waymark keys create`; mounted on both nodes
    with ExitStack() as stack:
        a, b = (Node(make_settings(tmp_path / name, database_url, object_store_url=objects,
                                   archive_url=archive, master_key_file=str(key_file),
                                   encrypt_objects=True, snapshot_delay_ms=10_000), stack)
                for name in ("a", "b"))
        assert a.settings.data_dir != b.settings.data_dir
        yield a, b


def _sign_up(node: Node) -> str:
    r = node.client.post("/api/v1/auth/signup", json={"email": "ann@example.com",
                                                      "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    r = node.client.post("/api/v1/tokens", json={"name": "nodes", "scope": "write"},
                         headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _layer_with_snapshot(node: Node, visibility: str, n: int) -> dict[str, Any]:
    """A map with one layer of ``n`` points, its snapshot published through ``node``."""
    r = node.call("POST", "/api/v1/maps", json={"title": visibility, "visibility": visibility})
    assert r.status_code == 201, r.text
    map_id, layer_id = r.json()["id"], r.json()["layers"][0]["id"]
    base = f"/api/v1/maps/{map_id}/layers/{layer_id}"
    for i in range(n):
        assert node.call("POST", base + "/features", json={"geometry": POINT,
                                                           "properties": {"i": i}}).status_code == 201
    data = node.call("GET", base + "/data")  # publishes the current version on demand
    assert data.status_code == 200, data.text
    layer = node.call("GET", base).json()
    assert layer["snapshot_url"], layer
    return {"map": map_id, "layer": layer_id, "base": base, "snapshot_url": layer["snapshot_url"],
            "features": json.loads(data.content)["features"]}


def _all_objects_readable(store_url: str, reader: Settings) -> int:
    """Read every object under ``store_url`` with ``reader``'s key source; the count read."""
    encrypted = 0
    store = open_object_store(reader, store_url)
    for info in raw_store(store).list_sync(""):
        raw = raw_store(store).get_sync(info.key)
        encrypted += is_encrypted(raw)
        store.get_sync(info.key)  # raises DecryptionError if this node cannot open it
    return encrypted


def test_every_object_written_by_one_node_is_readable_by_the_other(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = nodes
    a.token = b.token = _sign_up(a)
    private = _layer_with_snapshot(a, "private", 3)
    public = _layer_with_snapshot(b, "public", 2)
    # an import through A stores its original; a map deleted through B is archived by A
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": POINT, "properties": {"name": "imported"}}]}
    r = a.call("POST", f"/api/v1/maps/{private['map']}/import",
               files={"file": ("places.geojson", io.BytesIO(json.dumps(geojson).encode()))})
    assert r.status_code == 201, r.text
    gone = _layer_with_snapshot(b, "private", 1)
    assert b.call("DELETE", f"/api/v1/maps/{gone['map']}").status_code == 204
    report = archive_trashed_maps(a.app.state.services.db, a.app.state.services.store,
                                  archive_store(a.settings), 0, utcnow() + timedelta(seconds=1))
    assert report.maps_archived == [gone["map"]]

    # each node serves what the other wrote: the private (encrypted) snapshot included
    for reader, layer in ((b, private), (a, public), (b, public), (a, private)):
        r = reader.call("GET", layer["snapshot_url"])
        assert r.status_code == 200, (layer["snapshot_url"], r.text)
        assert json.loads(r.content)["features"] == layer["features"]
    # and an edit through B republishes the private layer; A serves the new version
    assert b.call("POST", private["base"] + "/features", json={"geometry": POINT}).status_code == 201
    assert len(json.loads(a.call("GET", private["base"] + "/data").content)["features"]) == 4

    # every object in the shared stores opens with either node's key source
    for reader in (a, b):
        assert _all_objects_readable(reader.settings.resolved_object_store_url, reader.settings) >= 2
        assert _all_objects_readable(reader.settings.resolved_archive_url, reader.settings) == 1


def test_a_node_with_its_own_key_cannot_read_the_others_objects(tmp_path: Path) -> None:
    """The bug of issue 15: each node generated its own master.key in its data dir."""
    shared = f"file://{tmp_path / 'objects'}"
    a, b = (make_settings(tmp_path / n, "sqlite://", object_store_url=shared) for n in "ab")
    assert a.master_key_source == b.master_key_source == "local-file"
    open_object_store(a).put_sync("uploads/m/u/f.geojson", b"{}")
    with pytest.raises(DecryptionError):
        open_object_store(b).get_sync("uploads/m/u/f.geojson")
    assert open_store(shared).get_sync("uploads/m/u/f.geojson") != b"{}"  # encrypted at rest


def _waymark(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    return subprocess.run([str(WAYMARK), *args], capture_output=True, text=True, timeout=120,
                          env={**clean, "WAYMARK_DATA_DIR": str(tmp_path / "var"), **env},
                          check=False)


def test_serve_and_worker_refuse_a_node_local_key_with_a_shared_database(tmp_path: Path) -> None:
    shared_db = {"WAYMARK_DATABASE_URL": "postgresql+psycopg://waymark@127.0.0.1:9/waymark"}
    for command in (("serve", "--no-migrate"), ("worker",)):
        proc = _waymark(tmp_path, *command, **shared_db)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "refusing to start" in proc.stderr and "WAYMARK_MASTER_KEY_FILE" in proc.stderr
        assert "WAYMARK_KMS_KEY_ID" in proc.stderr
    assert not (tmp_path / "var" / "master.key").exists()  # nothing generated


def test_check_deploy_lists_node_local_state(tmp_path: Path) -> None:
    # SQLite on one machine: listed, not refused for being local
    proc = _waymark(tmp_path, "check", "--deploy", WAYMARK_SECRET_KEY="s" * 40)
    lines = proc.stdout.splitlines()
    start = lines.index("node-local state (on this node only, lost with it):")
    listed = [line.strip() for line in lines[start + 1:] if line.startswith("  - ")]
    whats = [item.split(":", 1)[0] for item in listed]
    assert whats == ["- database", "- object storage", "- master key", "- sessions",
                     "- job queue", "- real-time edits, presence, rate limits, response cache",
                     "- archive"], listed
    assert not any("node-local" in line for line in proc.stderr.splitlines())
    # a shared database with every node-local piece replaced: nothing left to list
    key = tmp_path / "master.key"
    assert _waymark(tmp_path, "keys", "create", "-o", str(key)).returncode == 0
    assert _waymark(tmp_path, "keys", "create", "-o", str(key)).returncode == 1  # never overwritten
    shared = {"WAYMARK_DATABASE_URL": "postgresql+psycopg://waymark@127.0.0.1:9/waymark",
              "WAYMARK_OBJECT_STORE_URL": "s3://objects?endpoint=http://127.0.0.1:9",
              "WAYMARK_BACKUP_URL": "s3://backup?endpoint=http://127.0.0.1:9",
              "WAYMARK_REDIS_URL": "redis://127.0.0.1:9/0", "WAYMARK_MASTER_KEY_FILE": str(key)}
    proc = _waymark(tmp_path, "check", "--deploy", **shared)
    assert "node-local state: none" in proc.stdout.splitlines(), proc.stdout
    # ... and each one put back is refused with its fix
    proc = _waymark(tmp_path, "check", "--deploy", **{**shared, "WAYMARK_REDIS_URL": "",
                                                       "WAYMARK_MASTER_KEY_FILE": ""})
    fails = [line for line in proc.stderr.splitlines() if "node-local" in line]
    assert len(fails) == 4, proc.stderr  # master key, sessions, job queue, real time
    assert any("master key" in f and "WAYMARK_KMS_KEY_ID" in f for f in fails)
    assert any("job queue" in f and "WAYMARK_REDIS_URL" in f for f in fails)


@pytest.mark.postgres
def test_the_snapshot_build_lock_holds_across_nodes(postgres_server, postgres_template) -> None:  # type: ignore[no-untyped-def]
    """Database.process_lock on PostgreSQL is an advisory lock: a second node waits for the
    first one's build of a layer, and other layers are not held up."""
    import threading

    import psycopg

    from tests.cluster_servers import wait_for
    from tests.conftest import _fresh_postgres
    from waymark.db.engine import Database

    url = _fresh_postgres(postgres_server, postgres_template)
    a, b = Database(url), Database(url)
    held, release, b_in = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with a.process_lock(7):
            held.set()
            release.wait(60)

    def take() -> None:
        with b.process_lock(7):
            b_in.set()

    def b_waits() -> bool:
        with psycopg.connect(postgres_server.conninfo(url.rsplit("/", 1)[1])) as conn:
            return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND NOT granted").fetchone()[0] == 1

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        taker = threading.Thread(target=take)
        taker.start()
        wait_for(b_waits, 30, "node B waiting for node A's lock")
        assert not b_in.is_set()
        with b.process_lock(8):  # another layer: not held up
            pass
        release.set()
        assert b_in.wait(30)
        taker.join(30)
    finally:
        release.set()
        holder.join(30)
        a.dispose()
        b.dispose()
