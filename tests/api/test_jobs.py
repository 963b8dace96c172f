"""Large imports run as jobs on a real Huey queue, processed by a real consumer.

The app runs with jobs_immediate=False: the web request only stores the upload and enqueues
the job; a Huey consumer (worker threads in this process, as `waymark worker` runs them)
does the import. While it runs, progress is observable and the target layer shows either
none or all of the features (rows are staged in a hidden layer, then merged at once).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from huey.consumer import Consumer
from litestar import Litestar

from tests.api.test_import_api import assert_error, row_counts, stored_objects, upload
from tests.conftest import GEO_DATA, ApiClient, make_settings
from waymark.settings import Settings

N_POINTS = 100_000
JOB_BYTES = 1_000_000  # uploads above this become jobs


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, jobs_immediate=False, import_job_bytes=JOB_BYTES,
                         snapshot_delay_ms=0)


class _ThreadConsumer(Consumer):
    """Huey's consumer with its worker and scheduler threads, minus the process-wide signal
    handlers (the test runner owns those)."""

    def _set_signal_handlers(self) -> None:
        pass


@pytest.fixture
def start_consumer(app: Litestar) -> Iterator[Callable[[], Consumer]]:
    started: list[Consumer] = []

    def start() -> Consumer:
        huey = app.state.services.huey
        assert not huey.immediate
        consumer = _ThreadConsumer(huey, workers=1, worker_type="thread", initial_delay=0.05,
                                   backoff=1.1, max_delay=0.25, check_worker_health=False)
        consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop(graceful=True)


def points_geojson(n: int, seed: int = 20261125) -> bytes:
    rng = random.Random(seed)
    cats = ["cafe", "shop", "park", "museum", "station"]
    features = [
        {"type": "Feature",
         "geometry": {"type": "Point", "coordinates": [round(rng.uniform(-180, 180), 9),
                                                      round(rng.uniform(-85, 85), 9)]},
         "properties": {"name": f"point {i}", "value": round(rng.random(), 9),
                        "cat": rng.choice(cats), "i": i}}
        for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": features},
                      separators=(",", ":")).encode()


def _poll(client: ApiClient, job_url: str, layer_url: str, timeout: float = 240.0,
          on_sample: Callable[[dict, int], None] | None = None) -> tuple[dict, list[dict]]:
    samples = []
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(job_url)
        assert r.status_code == 200, r.text
        job = r.json()
        count = client.get(layer_url).json()["feature_count"]
        samples.append({**job, "layer_count": count})
        if on_sample:
            on_sample(job, count)
        if job["status"] in ("done", "failed"):
            return job, samples
        assert time.monotonic() < deadline, f"job did not finish: {job}"
        time.sleep(0.03)


def test_large_import_runs_as_a_job_with_progress_and_staging(
        alice: ApiClient, bob: ApiClient, anon: ApiClient, app: Litestar,
        start_consumer: Callable[[], Consumer]) -> None:
    data = points_geojson(N_POINTS)
    assert len(data) > 15_000_000  # ~18 MB
    m = alice.create_map("Big import")
    layer_id = m["layers"][0]["id"]
    layer_url = f"/api/v1/maps/{m['id']}/layers/{layer_id}"

    r = upload(alice, layer_url + "/import", "points.geojson", data)
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert job["url"] == f"/api/v1/jobs/{job['id']}"
    assert r.headers["location"] == job["url"]
    # the original is in object storage before any worker touches it
    uploads = stored_objects(app, "uploads")
    assert len(uploads) == 1 and next(iter(uploads)).endswith("/points.geojson")

    # nothing processes it until a consumer runs: it is really queued
    time.sleep(0.5)
    queued = alice.get(job["url"]).json()
    assert queued["status"] == "queued" and queued["result"] is None
    assert alice.get(layer_url).json()["feature_count"] == 0

    # other users cannot see the job; visitors must log in
    assert_error(bob.get(job["url"]), 404, "not_found")
    assert_error(anon.get(job["url"]), 401)

    staged_seen = []

    def check(job_now: dict, layer_count: int) -> None:
        assert layer_count in (0, N_POINTS), (job_now, layer_count)  # never partial
        # the hidden staging layer is never listed, nor are its rows served
        listed = alice.get(f"/api/v1/maps/{m['id']}/layers").json()
        assert [la["id"] for la in listed] == [layer_id]
        if layer_count == 0:
            features = alice.get(layer_url + "/features", params={"limit": 1}).json()["features"]
            if features:  # the merge committed between the two reads: then it is all there
                assert alice.get(layer_url).json()["feature_count"] == N_POINTS
        if job_now["status"] == "running" and layer_count == 0:
            staged_seen.append(row_counts(app)["features"])

    start_consumer()
    final, samples = _poll(alice, job["url"], layer_url, on_sample=check)
    assert final["status"] == "done", final
    assert final["error"] is None
    assert final["result"]["imported"] == N_POINTS
    assert final["progress"] == final["total"] == N_POINTS
    assert alice.get(layer_url).json()["feature_count"] == N_POINTS

    # progress was reported while running and only went up
    running = [s for s in samples if s["status"] == "running"]
    progress = [s["progress"] for s in running if s["progress"] is not None]
    assert progress == sorted(progress), progress
    assert len(set(progress)) >= 2, progress
    assert any(0 < p < N_POINTS for p in progress), progress
    assert all(s["total"] in (None, 0, N_POINTS) for s in running)
    # rows were being written (staged) while the layer still showed none of them
    assert any(0 < n < N_POINTS for n in staged_seen), staged_seen[:20]

    # the data is right, and nothing is left in staging
    counts = row_counts(app)
    assert counts["features"] == N_POINTS
    r = alice.get(layer_url + "/features", params={"limit": 3})
    names = [f["properties"]["name"] for f in r.json()["features"]]
    assert names == ["point 0", "point 1", "point 2"]
    layers = alice.get(f"/api/v1/maps/{m['id']}/layers").json()
    assert [layer["id"] for layer in layers] == [layer_id]
    assert alice.get(job["url"]).json() == final  # stable once finished


def test_broken_file_job_fails_naming_the_line(alice: ApiClient, app: Litestar,
                                               start_consumer: Callable[[], Consumer]) -> None:
    data = (GEO_DATA / "csv/openlayers/meteorite_landings.csv").read_bytes()
    assert len(data) > JOB_BYTES
    m = alice.create_map("Broken import")
    layer_url = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    start_consumer()
    before = row_counts(app)
    r = upload(alice, f"/api/v1/maps/{m['id']}/import", "meteorite_landings.csv", data)
    assert r.status_code == 202, r.text
    job_url = r.json()["job"]["url"]
    final, _ = _poll(alice, job_url, layer_url)
    assert final["status"] == "failed", final
    assert final["result"] is None
    error = final["error"]
    assert error["code"] == "invalid_file"
    assert error["details"]["line"] == 22948
    assert "line 22948" in error["message"] and "out of range" in error["message"]
    # no layer was created, no feature was left behind in staging
    after = row_counts(app)
    assert after["features"] == before["features"] == 0
    assert after["layers"] == before["layers"]
    assert after["jobs"] == before["jobs"] + 1 and after["uploads"] == before["uploads"] + 1
    assert len(alice.get(f"/api/v1/maps/{m['id']}/layers").json()) == 1


def test_skip_invalid_job_and_new_layer_name(alice: ApiClient, app: Litestar,
                                             start_consumer: Callable[[], Consumer]) -> None:
    data = (GEO_DATA / "csv/openlayers/meteorite_landings.csv").read_bytes()
    m = alice.create_map("Meteorites")
    start_consumer()
    r = upload(alice, f"/api/v1/maps/{m['id']}/import", "meteorite_landings.csv", data,
               skip_invalid="true", layer_name="Meteorites")
    assert r.status_code == 202, r.text
    layer_url = f"/api/v1/maps/{m['id']}/layers/{m['layers'][0]['id']}"
    final, _ = _poll(alice, r.json()["job"]["url"], layer_url)
    assert final["status"] == "done", final
    expected = 45716 - 7315 - 1
    assert final["result"]["imported"] == expected
    assert len(final["result"]["warnings"]) == 21
    layers = alice.get(f"/api/v1/maps/{m['id']}/layers").json()
    assert [(la["name"], la["feature_count"]) for la in layers][1:] == [("Meteorites", expected)]


def test_unknown_job_is_404(alice: ApiClient) -> None:
    assert_error(alice.get("/api/v1/jobs/does-not-exist"), 404, "not_found")
