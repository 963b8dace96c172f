"""The background snapshot publisher: coalesces bursts, never loses the last edit."""

import time

from waymark.db.engine import Database
from waymark.db.models import Layer, Map, User
from waymark.maps import snapshots
from waymark.maps.snapshots import Publisher
from waymark.storage import open_store


def _layer(db: Database) -> int:
    with db.write() as s:
        user = User(email="p@example.com", display_name="p", password_hash="x")
        s.add(user)
        s.flush()
        m = Map(public_id="pub1", owner_id=user.id, title="m")
        s.add(m)
        s.flush()
        layer = Layer(public_id="l1", map_id=m.id, name="l", style="{}")
        s.add(layer)
        s.flush()
        return layer.id


def test_burst_of_schedules_builds_few_times_and_ends_current(sqlite_url, monkeypatch):
    db = Database(sqlite_url)
    store = open_store("memory://")
    layer_id = _layer(db)
    calls = []
    real = snapshots.publish

    def counting(db_, store_, lid):
        calls.append(lid)
        return real(db_, store_, lid)

    monkeypatch.setattr(snapshots, "publish", counting)
    pub = Publisher(db, store, delay=0.2)
    for i in range(50):
        with db.write() as s:
            s.get(Layer, layer_id).version += 1
        pub.schedule(layer_id)
        time.sleep(0.005)
    deadline = time.monotonic() + 10
    while not pub.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.idle()
    assert 1 <= len(calls) <= 5, calls  # 50 edits, a handful of builds
    with db.read() as s:
        layer = s.get(Layer, layer_id)
        assert layer.snapshot_version == layer.version  # the last edit is published
    pub.stop()
    db.dispose()


def test_stop_cancels_pending_work(sqlite_url):
    db = Database(sqlite_url)
    layer_id = _layer(db)
    pub = Publisher(db, open_store("memory://"), delay=30)
    pub.schedule(layer_id)
    started = time.monotonic()
    pub.stop()
    assert time.monotonic() - started < 5 and pub.idle()
    pub.schedule(layer_id)  # ignored after stop
    assert pub.idle()
    db.dispose()
