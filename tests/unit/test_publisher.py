"""The background snapshot publisher: coalesces bursts, never loses the last edit."""

import threading
import time
from datetime import timedelta

from sqlalchemy import select

from waymark.db.engine import Database
from waymark.db.models import Layer, Map, Snapshot, User, utcnow
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
    """50 edits while a build is running (the test holds it until the burst is over): one
    more build publishes all of them, however fast or slow the machine is."""
    db = Database(sqlite_url)
    store = open_store("memory://")
    layer_id = _layer(db)
    calls = []
    burst_over = threading.Event()
    real = snapshots.publish

    def held_until_the_burst_is_over(db_, store_, lid):
        calls.append(lid)
        burst_over.wait(60)
        return real(db_, store_, lid)

    monkeypatch.setattr(snapshots, "publish", held_until_the_burst_is_over)
    pub = Publisher(db, store, delay=0.2)
    for _ in range(50):
        with db.write() as s:
            s.get(Layer, layer_id).version += 1
        pub.schedule(layer_id)
    burst_over.set()
    deadline = time.monotonic() + 60
    while not pub.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.idle()
    assert 1 <= len(calls) <= 2, calls  # 50 edits: the build in progress, then one more
    with db.read() as s:
        layer = s.get(Layer, layer_id)
        assert layer.snapshot_version == layer.version  # the last edit is published
    pub.stop()
    db.dispose()


def test_stop_cancels_pending_work(sqlite_url):
    db = Database(sqlite_url)
    layer_id = _layer(db)
    pub = Publisher(db, open_store("memory://"), delay=3600)  # pending for an hour
    pub.schedule(layer_id)
    stopper = threading.Thread(target=pub.stop)
    stopper.start()
    stopper.join(60)  # a stop that waited for the pending work would still be here
    assert not stopper.is_alive() and pub.idle()
    pub.schedule(layer_id)  # ignored after stop
    assert pub.idle()
    db.dispose()


def _snapshot(db: Database, layer_id: int, build_ms: int | None, age_s: float) -> None:
    with db.write() as s:
        version = s.get(Layer, layer_id).version
        s.add(Snapshot(layer_id=layer_id, version=version, sha256="0" * 64, size=1, raw_size=1,
                       object_key="k", build_ms=build_ms,
                       created_at=utcnow() - timedelta(seconds=age_s)))


def test_next_build_waits_spacing_times_the_newest_build(sqlite_url):
    db = Database(sqlite_url)
    layer_id = _layer(db)
    assert snapshots.next_build_in(db, layer_id) == 0.0  # never built
    before = time.monotonic()
    _snapshot(db, layer_id, build_ms=200, age_s=0.5)  # made 0.5 s ago, cost 0.2 s
    wait = snapshots.next_build_in(db, layer_id)
    took = time.monotonic() - before  # the snapshot aged this much more meanwhile
    spacing = snapshots.BUILD_SPACING * 0.2
    assert spacing - 0.5 - took - 0.01 <= wait <= spacing - 0.5 + 0.01, (wait, took)
    with db.write() as s:
        s.get(Layer, layer_id).version += 1
    _snapshot(db, layer_id, build_ms=None, age_s=0)  # newest decides; no cost recorded: no wait
    assert snapshots.next_build_in(db, layer_id) == 0.0
    db.dispose()


def test_a_build_by_another_process_paces_this_one(sqlite_url, monkeypatch):
    """Workers share the pacing: a layer another worker has just built (slowly) is not built
    again here before the spacing has passed, but the pending edit is published after it."""
    db = Database(sqlite_url)
    store = open_store("memory://")
    layer_id = _layer(db)
    built = time.monotonic()
    _snapshot(db, layer_id, build_ms=150, age_s=0)  # "another worker" built it: 1.5 s spacing
    with db.write() as s:
        s.get(Layer, layer_id).version += 1  # an edit after that build
    calls = []
    real = snapshots.publish

    def counting(db_, store_, lid):
        calls.append(time.monotonic())
        return real(db_, store_, lid)

    monkeypatch.setattr(snapshots, "publish", counting)
    pub = Publisher(db, store, delay=0.05)
    started = time.monotonic()
    pub.schedule(layer_id)
    deadline = started + 10
    while not pub.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.idle()
    # not before the spacing has passed since that build (whatever time the setup took)
    assert len(calls) == 1 and calls[0] - built >= 1.45, [c - built for c in calls]
    with db.read() as s:
        layer = s.get(Layer, layer_id)
        assert layer.snapshot_version == layer.version
        newest = s.scalar(select(Snapshot).where(Snapshot.layer_id == layer_id)
                          .order_by(Snapshot.version.desc()).limit(1))
        assert newest.version == layer.version and newest.build_ms is not None
    pub.stop()
    db.dispose()
