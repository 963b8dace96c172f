"""Waymark as a multi-node cluster, end to end under faults (issue 15, items 3 and 4).

One run (the module fixture): bring the cluster up (topology.py), start the workload
(workload.py: editors on different nodes, anonymous readers, websocket viewers on every
node, a 20 MB import through the queue), then, one after the other, each waiting for its
recovery to be observed: kill -9 a worker mid-import, kill -9 an app node and bring it
back, kill the Redis primary, a Patroni switchover, kill -9 of the PostgreSQL primary (and
bring it back), and a rolling deploy of a release with an expand migration and then of one
with its contract migration. The tests below check the outcome and print what was measured.

Durations are measured and printed, never asserted: the suite must not depend on the
machine's speed. What is asserted is what must hold at any speed: no acknowledged write
lost, every object readable from every node, the import applied once, every websocket
client converged, no 500, every refusal a 503 with Retry-After, no idempotent read lost to
an app node's death, each periodic run done by one worker.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.cluster.topology import NODES, Cluster, base_env, start_cluster
from tests.cluster.workload import (
    Editor,
    Fault,
    Log,
    Reader,
    Stop,
    Target,
    Viewer,
    window,
    windows,
)
from tests.cluster_servers import wait_for
from tests.servers import scoped_env
from waymark.deploy.migration_rules import check_directory
from waymark.settings import load_settings
from waymark.storage.crypto import open_object_store, raw_store

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
MIN_WORKLOAD_S = 60
IMPORT_FEATURES = 80_000  # about 20 MB of GeoJSON


@dataclass
class Run:
    cluster: Cluster
    log: Log
    faults: list[Fault]
    target: Target
    editors: list[Editor]
    readers: list[Reader]
    viewers: list[Viewer]
    owner_token: str
    import_map: str
    import_layer: str
    import_job: str
    duration: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


# ---- setup through the load balancer --------------------------------------------------------
def _user(lb: str, email: str) -> str:
    """Sign up and make a write token (the prod cookie is Secure: sent by hand over HTTP)."""
    with httpx.Client(base_url=lb, timeout=30) as http:
        r = http.post("/api/v1/auth/signup", json={"email": email,
                                                   "password": "a-long-cluster-password"})
        assert r.status_code == 201, r.text
        cookie = r.headers["set-cookie"].split(";", 1)[0]
        r = http.post("/api/v1/tokens", json={"name": "cluster", "scope": "write"},
                      headers={"Cookie": cookie, "X-CSRF-Token": r.json()["csrf_token"]})
        assert r.status_code == 201, r.text
        return r.json()["token"]


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _geojson(n: int) -> bytes:
    pad = "x" * 150
    features = ",".join(
        f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":'
        f'[{-3.3 + (i % 400) / 1000:.5f},{55.9 + (i // 400) / 2000:.5f}]}},'
        f'"properties":{{"n":{i},"note":"{pad}"}}}}' for i in range(n))
    return ('{"type":"FeatureCollection","features":[' + features + "]}").encode()


def _job(cluster: Cluster, job_id: str) -> dict[str, Any]:
    with psycopg.connect(cluster.pg.conninfo(dbname="waymark")) as conn:
        row = conn.execute("SELECT status, progress, total, attempt, worker, updated_at, now() "
                           "FROM jobs WHERE public_id = %s", (job_id,)).fetchone()
    keys = ("status", "progress", "total", "attempt", "worker", "updated_at", "now")
    return dict(zip(keys, row, strict=False))


def _redis_ok_everywhere(cluster: Cluster) -> bool:
    for name in NODES:
        r = httpx.get(cluster.node_url(name) + "/readyz", timeout=3)
        if not r.json()["checks"]["redis"].get("ok"):
            return False
    return True


def _settle(cluster: Cluster) -> None:
    """Every app node UP in HAProxy and answering /readyz 200."""
    for name in NODES:
        wait_for(lambda n=name: cluster.haproxy_status(n) == "UP", 180, f"{name} UP again")


# ---- the run ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("cluster")
    with scoped_env(AWS_CA_BUNDLE=None, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test"):
        t0 = time.monotonic()
        cluster = start_cluster(root)
        print(f"\ncluster up in {time.monotonic() - t0:.1f}s: {len(NODES)} app nodes, "
              f"{len(cluster.workers)} workers, PostgreSQL {[n.name for n in cluster.pg.nodes]},"
              f" Redis + 3 Sentinels, SeaweedFS")
        try:
            yield _workload_under_faults(cluster, root)
        finally:
            cluster.stop()
            cluster.s3.stop()
            cluster.redis.stop()
            cluster.pg.stop()


def _workload_under_faults(cluster: Cluster, root: Path) -> Run:
    lb = cluster.lb
    owner = _user(lb, "owner@cluster.test")
    editor_tokens = [_user(lb, f"editor{i}@cluster.test") for i in range(3)]
    with httpx.Client(base_url=lb, headers=_as(owner), timeout=30) as http:
        r = http.post("/api/v1/maps", json={"title": "Shared", "visibility": "public"})
        shared_map, shared_layer = r.json()["id"], r.json()["layers"][0]["id"]
        for i in range(3):
            r = http.post(f"/api/v1/maps/{shared_map}/members",
                          json={"email": f"editor{i}@cluster.test", "role": "editor"})
            assert r.status_code == 201, r.text
        target = Target(shared_map, shared_layer, editor_tokens)
        shared = [http.post(target.features, json={
            "geometry": {"type": "Point", "coordinates": [-3.2, 55.95]},
            "properties": {"shared": i}}).json()["id"] for i in range(5)]
        r = http.post("/api/v1/maps", json={"title": "Import target"})
        import_map, import_layer = r.json()["id"], r.json()["layers"][0]["id"]

    log, stop, stop_viewers = Log(), Stop(), Stop()
    nodes = [cluster.node_url(n) for n in NODES]
    editors = [Editor(f"editor{i}", nodes[i], lb, editor_tokens[i], target, shared, log, stop, i)
               for i in range(3)]
    readers = [Reader(f"reader{i}", lb, target, log, stop) for i in range(2)]
    viewers = [Viewer(f"viewer{i}", nodes[i % 3:] + nodes[:i % 3], lb, owner, target, log,
                      stop_viewers) for i in range(4)]
    for thread in (*editors, *readers, *viewers):
        thread.start()
    faults: list[Fault] = []
    run = Run(cluster, log, faults, target, editors, readers, viewers, owner, import_map,
              import_layer, "")
    try:
        run.import_job = _fault_worker_killed_mid_import(run, log, faults, root)
        _fault_app_node_killed(cluster, log, faults)
        _fault_redis_primary_killed(cluster, log, faults)
        _fault_patroni_switchover(cluster, log, faults)
        _fault_postgres_primary_killed(cluster, log, faults)
        _fault_rolling_deploy(cluster, log, faults, "r2", "expand")
        _fault_rolling_deploy(cluster, log, faults, "r3", "contract")
        stop.wait(max(0.0, MIN_WORKLOAD_S - log.now()))
    finally:
        stop.set()
        for thread in (*editors, *readers):
            thread.join(90)
        run.duration = log.now()
        # the last edits' events are on their way: the viewers converge, or the test says not
        try:
            expected = _layer_state(cluster, target.layer_id)
            wait_for(lambda: all(v.state() == expected for v in viewers), 120,
                     "every websocket viewer to reach the final layer state")
            run.notes["viewers converged after s"] = round(log.now() - run.duration, 2)
        except AssertionError as exc:
            run.notes["viewers converged after s"] = str(exc)
        stop_viewers.set()
        for thread in viewers:
            thread.join(30)
    wait_for(lambda: _job(cluster, run.import_job)["status"] in ("done", "failed"), 600,
             "the import job to finish")
    return run


def _layer_state(cluster: Cluster, layer_id: str) -> dict[str, int]:
    """The layer's features as the database has them: id -> version."""
    with psycopg.connect(cluster.pg.conninfo(dbname="waymark")) as conn:
        return dict(conn.execute("SELECT f.uuid, f.version FROM features f JOIN layers l ON "
                                 "l.id = f.layer_id WHERE l.public_id = %s",
                                 (layer_id,)).fetchall())


def _fault_worker_killed_mid_import(run: Run, log: Log, faults: list[Fault], root: Path) -> str:
    """The merge of the import is held by a row lock on its layer, so the worker is
    certainly mid-import when it is killed; another attempt then takes the job over."""
    cluster = run.cluster
    body = _geojson(IMPORT_FEATURES)
    run.notes["import_bytes"] = len(body)
    lock = psycopg.connect(cluster.pg.conninfo(dbname="waymark"))
    try:
        lock.execute("SELECT l.id FROM layers l WHERE l.public_id = %s FOR UPDATE",
                     (run.import_layer,))
        r = httpx.post(f"{cluster.lb}/api/v1/maps/{run.import_map}/layers/{run.import_layer}"
                       "/import", headers=_as(run.owner_token), timeout=120,
                       files={"file": ("big.geojson", io.BytesIO(body))})
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]
        def under_way() -> dict[str, Any] | None:
            job = _job(cluster, job_id)
            return job if job["progress"] > 0 and job["worker"] else None

        job = wait_for(under_way, 300, "the import to be under way")
        pid = int(job["worker"].rsplit(":", 1)[1])
        victim = next(w for w in cluster.workers if w.pid == pid)
        fault = Fault("kill -9 worker mid-import", log.now(),
                      notes={"worker": victim.name, "progress": f"{job['progress']}/"
                             f"{job['total']}", "attempt": job["attempt"]})
        victim.kill()
    finally:
        lock.rollback()
        lock.close()
    # the dead attempt's heartbeat stops; once stale, the restarted worker takes it over
    def stale() -> bool:
        job = _job(cluster, job_id)
        return (job["now"] - job["updated_at"]).total_seconds() > 10

    wait_for(stale, 120, "the killed worker's job to go stale")
    victim.start(Path(cluster.state()["current"]))
    wait_for(lambda: _job(cluster, job_id)["attempt"] > fault.notes["attempt"], 180,
             "another attempt to take the job over")
    fault.end = log.now()
    fault.notes["taken over by"] = _job(cluster, job_id)["worker"]
    faults.append(fault)
    return job_id


def _fault_app_node_killed(cluster: Cluster, log: Log, faults: list[Fault]) -> None:
    fault = Fault("kill -9 app node app2 (and back)", log.now())
    cluster.kill_node("app2")
    wait_for(lambda: cluster.haproxy_status("app2").startswith("DOWN"), 60,
             "HAProxy to mark app2 down")
    fault.notes["marked down after s"] = round(log.now() - fault.start, 2)
    cluster.restart_node("app2")
    _settle(cluster)
    fault.end = log.now()
    faults.append(fault)


def _fault_redis_primary_killed(cluster: Cluster, log: Log, faults: list[Fault]) -> None:
    redis = cluster.redis
    old = redis.primary.port
    fault = Fault("kill Redis primary", log.now())
    redis.primary.kill()
    wait_for(lambda: redis.current_primary_port() not in (None, old), 120,
             "Sentinel to promote the replica")
    fault.notes["sentinel switched after s"] = round(log.now() - fault.start, 2)
    wait_for(lambda: _redis_ok_everywhere(cluster), 120, "every node's Redis to be ok again")
    fault.end = log.now()
    fault.notes["fail-over window s"] = round(fault.end - fault.start, 2)
    faults.append(fault)


def _fault_patroni_switchover(cluster: Cluster, log: Log, faults: list[Fault]) -> None:
    pg = cluster.pg
    leader = pg.leader()
    assert leader is not None
    candidate = next(n for n in pg.nodes if n is not leader)
    fault = Fault(f"Patroni switchover {leader.name} -> {candidate.name}", log.now())
    pg.switchover(candidate)
    pg.wait_for_leader(other_than=leader.name)
    _settle(cluster)
    fault.end = log.now()
    pg.wait_for_replicas()
    faults.append(fault)


def _fault_postgres_primary_killed(cluster: Cluster, log: Log, faults: list[Fault]) -> None:
    pg = cluster.pg
    victim = pg.leader()
    assert victim is not None
    fault = Fault(f"kill -9 PostgreSQL primary {victim.name}", log.now())
    victim.kill()
    new = pg.wait_for_leader(other_than=victim.name)
    fault.notes["new primary"] = new.name
    fault.notes["promoted after s"] = round(log.now() - fault.start, 2)
    _settle(cluster)
    fault.end = log.now()
    victim.start()  # the lost machine comes back: it rejoins as a replica
    pg.wait_for_replicas()
    fault.notes["old primary rejoined after s"] = round(log.now() - fault.start, 2)
    faults.append(fault)


def _fault_rolling_deploy(cluster: Cluster, log: Log, faults: list[Fault], release: str,
                          phase: str) -> None:
    path = cluster.releases[release]
    assert check_directory(path / "src/waymark/db/migrations/versions") == []  # the rule holds
    fault = Fault(f"rolling deploy {release} ({phase} migration)", log.now())
    result = cluster.deploy("release", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    fault.end = log.now()
    fault.notes["deploy"] = [line for line in result.stdout.splitlines() if "ready" in line]
    faults.append(fault)


# ---- acceptance ------------------------------------------------------------------------------------
def _db_rows(cluster: Cluster, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.pg.conninfo(dbname="waymark")) as conn:
        return conn.execute(sql, params).fetchall()


def test_the_workload_ran_through_every_fault(run: Run) -> None:
    names = [f.name for f in run.faults]
    print(f"\nworkload {run.duration:.1f}s; faults in order:")
    for f in run.faults:
        print(f"  {f.start:7.1f}s .. {f.end:7.1f}s  {f.name}  {f.notes}")
    assert run.duration >= MIN_WORKLOAD_S
    assert len(names) == 7, names
    writes = [e for e in run.log.entries if e.kind == "write" and e.ok]
    reads = [e for e in run.log.entries if e.kind == "read" and e.ok]
    print(f"  {len(writes)} writes and {len(reads)} reads succeeded; "
          f"{sum(r.snapshots for r in run.readers)} snapshots read; "
          f"{sum(v.connects for v in run.viewers)} websocket connections")
    assert writes and reads
    assert all(f.end >= f.start for f in run.faults)
    assert run.cluster.state()["current"].endswith("/r3")  # the contract release is live
    columns = _db_rows(run.cluster, "SELECT column_name FROM information_schema.columns "
                       "WHERE table_name = 'maps' AND column_name = 'cluster_note'")
    assert columns == []  # expanded by r2, contracted by r3
    (revision,) = _db_rows(run.cluster, "SELECT version_num FROM alembic_version")[0]
    assert revision == "cluster_test_contract"


def test_no_acknowledged_write_is_lost(run: Run) -> None:
    stored = {fid: (version, json.loads(props)) for fid, version, props in _db_rows(
        run.cluster, "SELECT f.uuid, f.version, f.properties FROM features f "
        "JOIN layers l ON l.id = f.layer_id WHERE l.public_id = %s", run.target.layer_id)}
    lost, changed = [], []
    for fid, (version, props) in run.log.acked.items():
        if fid not in stored or stored[fid][0] < version:
            lost.append((fid, version, stored.get(fid)))
        elif stored[fid][0] == version and stored[fid][1] != props:
            changed.append((fid, version, props, stored[fid][1]))
    print(f"\nacknowledged writes: {len(run.log.acked)} features (last acknowledged version "
          f"of each) checked against the database: {len(lost)} lost, {len(changed)} different")
    assert lost == [] and changed == []


def test_every_object_is_readable_from_every_node(run: Run) -> None:
    cluster = run.cluster
    opened = {}
    keys: list[str] = []  # listed once: the workers may add objects while the nodes read
    for name in NODES:  # each node's own settings: its data dir, the shared key and stores
        settings = load_settings({**base_env(), **cluster.env,
                                  "WAYMARK_DATA_DIR": str(cluster.node_data_dir(name))})
        store = open_object_store(settings)
        keys = keys or [info.key for info in raw_store(store).list_sync("")]
        for key in keys:
            store.get_sync(key)  # DecryptionError / StorageError if this node cannot
        opened[name] = len(keys)
    layers = _db_rows(cluster, "SELECT m.public_id, l.public_id FROM layers l "
                      "JOIN maps m ON m.id = l.map_id WHERE NOT l.staging")
    served = 0
    for map_id, layer_id in layers:  # the current version (published on demand by the first
        base = f"/api/v1/maps/{map_id}/layers/{layer_id}"  # node to read it) and its snapshot
        for name in NODES:
            url = cluster.node_url(name)
            r = httpx.get(url + base + "/data", headers=_as(run.owner_token), timeout=120)
            assert r.status_code == 200, (name, base, r.text)
            snapshot = httpx.get(url + base, headers=_as(run.owner_token)).json()["snapshot_url"]
            r = httpx.get(url + snapshot, headers=_as(run.owner_token), timeout=120)
            assert r.status_code == 200, (name, snapshot, r.text)
            served += 2
    print(f"\nobjects opened by each node: {opened}; {served} layer reads over HTTP "
          f"({len(layers)} layers x {len(NODES)} nodes, current data and last snapshot)")
    assert keys and all(count == len(keys) for count in opened.values())


def test_the_import_was_applied_exactly_once(run: Run) -> None:
    job = _job(run.cluster, run.import_job)
    (count,), = _db_rows(run.cluster, "SELECT count(*) FROM features f JOIN layers l ON "
                         "l.id = f.layer_id WHERE l.public_id = %s", run.import_layer)
    (imports,), = _db_rows(run.cluster, "SELECT count(*) FROM changes c JOIN layers l ON "
                           "l.id = c.layer_id WHERE l.public_id = %s AND c.op = 'layer.import'",
                           run.import_layer)
    (staging,), = _db_rows(run.cluster, "SELECT count(*) FROM layers WHERE staging")
    print(f"\nimport of {run.notes['import_bytes']:,} bytes: job {job['status']} after "
          f"{job['attempt']} attempts; {count:,} features, {imports} import in the history, "
          f"{staging} staging layers left")
    assert run.notes["import_bytes"] >= 20_000_000
    assert job["status"] == "done" and job["attempt"] >= 2
    assert (count, imports, staging) == (IMPORT_FEATURES, 1, 0)


def test_every_websocket_client_converges_to_the_final_layer_state(run: Run) -> None:
    expected = _layer_state(run.cluster, run.target.layer_id)
    states = {v.name: v.state() for v in run.viewers}
    print(f"\nfinal layer: {len(expected)} features; viewers converged after the last edit: "
          f"{run.notes['viewers converged after s']}")
    for name, state in states.items():
        missing = {f for f in expected if state.get(f) != expected[f]}
        print(f"  {name}: {len(state)} features, {len(missing)} differ; "
              f"{run.viewers[int(name[-1])].connects} connections, "
              f"{run.viewers[int(name[-1])].resyncs} refetches")
    differing = sorted({f for state in states.values() for f in set(expected) | set(state)
                        if state.get(f) != expected.get(f)})
    for fid in differing[:5]:
        ages = _db_rows(run.cluster, "SELECT round(extract(epoch FROM now() - updated_at)) "
                        "FROM features WHERE uuid = %s", fid)
        print(f"  differs: {fid} database v{expected.get(fid)} (changed {ages[0][0] if ages else '-'}"
              f"s before the check), viewers {[s.get(fid) for s in states.values()]}")
    assert all(state == expected for state in states.values())


def test_failed_request_windows_per_fault(run: Run) -> None:
    entries = run.log.entries
    print("\nfailed requests per fault (attempts that failed; 'final' = not recovered by "
          "the client's retries):")
    targets = {"kill -9 app node": "0 failed idempotent reads after retries",
               "kill Redis primary": "fail-over <= 5 s",
               "Patroni switchover": "<= 15 s of refused writes, 503 + Retry-After",
               "kill -9 PostgreSQL": "<= 15 s of refused writes, 503 + Retry-After"}
    for fault, (start, end) in zip(run.faults, windows(run.faults), strict=False):
        reads = window(entries, start, end, "read")
        writes = window(entries, start, end, "write")
        target = next((t for k, t in targets.items() if fault.name.startswith(k)), "-")
        print(f"  {fault.name}: {fault.end - fault.start:.1f}s to recover; target: {target}\n"
              f"      reads: {reads}\n      writes: {writes}")
        if fault.name.startswith("kill -9 app node"):
            assert reads["failed_final"] == 0, reads
    statuses = {e.status for e in entries if not e.ok}
    assert 500 not in statuses, [e for e in entries if e.status == 500][:5]
    refused = [e for e in entries if e.status == 503]
    assert all(e.retry_after for e in refused), [e for e in refused if not e.retry_after][:5]
    final = [e for e in entries if not e.ok and e.final and e.kind != "ws"]
    dropped = sum(1 for e in entries if e.kind == "ws")
    print(f"  overall: {len(entries)} requests, failed attempts by status "
          f"{ {s: sum(1 for e in entries if not e.ok and e.status == s) for s in statuses} }; "
          f"HTTP requests failed after the client's retries: {len(final)} "
          f"{[(round(e.t, 1), e.kind, e.status, e.detail) for e in final][:10]}; "
          f"websocket connections ended by a node going away (each reconnected): {dropped}")


def test_each_periodic_run_is_done_by_one_worker(run: Run) -> None:
    running: list[str] = []
    skipped = 0
    for worker in run.cluster.workers:
        text = worker.log.read_text(errors="replace")
        running += re.findall(r"periodic task requeue_stale_jobs for (\S+): running", text)
        skipped += len(re.findall(r"periodic task requeue_stale_jobs for .*: claimed by "
                                  r"another worker", text))
    rows = _db_rows(run.cluster, "SELECT scheduled_for, claimed_by FROM periodic_runs "
                    "WHERE name = 'requeue_stale_jobs'")
    print(f"\nrequeue_stale_jobs: {len(rows)} minutes claimed, run {len(running)} times, "
          f"skipped {skipped} times by the other worker")
    assert len(running) == len(set(running)) == len(rows) > 0
    assert skipped > 0
