"""Metrics, request ids, log redaction and /metrics protection, in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from litestar.testing import TestClient

from tests.conftest import make_settings
from tests.redis_servers import redis_server  # noqa: F401 - fixture
from waymark.app import create_app, setup_process
from waymark.observability import metrics
from waymark.observability.logging import REDACTED, scrub, scrub_text
from waymark.observability.metrics_server import metrics_wsgi_app, scrape_registry

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
PROMQL_FUNCS = {"sum", "rate", "irate", "increase", "histogram_quantile", "max", "min", "avg",
                "by", "without", "time", "and", "or", "unless", "on", "ignoring", "offset",
                "count", "label_values", "predict_linear", "avg_over_time", "le", "bool"}
NOT_FROM_THE_APP = {"up"}  # Prometheus' own scrape health series
# pg_*: prometheus-postgres-exporter's, checked against the real exporter by
# tests/integration/test_postgres_monitoring.py
EXPORTER_PREFIXES = ("pg_",)


def exported_names(tmp_path: Path) -> set[str]:
    """Every sample name a scrape of the app returns (families and their _bucket/_sum/...)."""
    from prometheus_client import generate_latest

    settings = make_settings(tmp_path, "sqlite:///:memory:")
    text = generate_latest(scrape_registry(settings)).decode()
    names = set()
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",),
                "gauge": ("",)}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            names.add(family)
            names.update(family.removesuffix("_total") + s for s in suffixes.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def promql_metrics(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # selectors
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {w for w in words if w not in PROMQL_FUNCS and not re.fullmatch(r"\d+[smhd]?", w)}


def test_dashboards_exist_for_each_area() -> None:
    assert DASHBOARDS
    titles = " ".join(p["title"] for d in DASHBOARDS
                      for p in json.loads(d.read_text())["panels"] if p["type"] == "row")
    for area in ("Traffic", "Latency", "Errors", "Saturation", "Cache", "Real-time", "Backups",
                 "PostgreSQL"):
        assert area in titles


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_metric_is_exported_by_the_app(dashboard: Path, tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    used: set[str] = set()
    board = json.loads(dashboard.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            used |= promql_metrics(target["expr"])
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            # label_values(<series selector>, <label>): the label is not a metric
            query = re.sub(r"label_values\((.*),\s*\w+\s*\)$", r"\1", variable["query"])
            used |= promql_metrics(query)
    assert used, "no metrics found in the dashboard"
    missing = sorted(m for m in used - exported - NOT_FROM_THE_APP
                     if not m.startswith(EXPORTER_PREFIXES))
    assert not missing, f"{dashboard.name} uses metrics the app does not export: {missing}"


def test_alert_rules_use_exported_metrics(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/waymark.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in promql_metrics(rule["expr"]):
                if name.startswith("waymark_"):
                    assert name in exported, f"{rule.get('alert') or rule['record']}: {name}"
                else:  # exporters (up, probe_*, redis_*) or recording rules
                    assert name in recorded or name in NOT_FROM_THE_APP or \
                        name.startswith(("probe_", "redis_")), name


# Every family the observability issue asks for, with the labels an operator slices by.
REQUIRED_FAMILIES = {
    "waymark_http_requests_total": {"route", "method", "status"},
    "waymark_http_request_duration_seconds": {"route", "method"},
    "waymark_http_requests_in_flight": set(),
    "waymark_db_query_duration_seconds": {"operation"},
    "waymark_cache_requests_total": {"level", "result"},
    "waymark_ws_connections": set(),
    "waymark_ws_messages_total": {"direction"},
    "waymark_ratelimit_rejections_total": {"route_class"},
    "waymark_jobs_queue_depth": set(),
    "waymark_jobs_finished_total": {"kind", "status"},
    "waymark_objectstore_operation_duration_seconds": {"operation"},
    "waymark_objectstore_errors_total": {"operation"},
    "waymark_import_duration_seconds": {"format", "status"},
    "waymark_backup_lag_seconds": set(),
    "waymark_backup_last_success_timestamp_seconds": set(),
    "waymark_redis_up": set(),
    "waymark_redis_errors_total": {"error"},
    "waymark_unhandled_exceptions_total": {"exception"},
    "waymark_build_info": {"version", "commit"},
}


def test_every_required_metric_family_is_exported_with_its_labels(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    from prometheus_client import REGISTRY

    labels = {m.name: set() for m in REGISTRY.collect()}
    for family in REGISTRY.collect():
        for s in family.samples:
            labels[family.name] |= set(s.labels) - {"le"}
    for name, wanted in REQUIRED_FAMILIES.items():
        assert name in exported, name
        family = name.removesuffix("_total")
        if family in labels:  # scrape-time gauges (queue depth) have no recorded samples
            declared = set(_declared_labels(family))
            assert wanted <= declared, (name, declared)


def _declared_labels(family: str) -> tuple[str, ...]:
    from prometheus_client import REGISTRY

    collector = REGISTRY._names_to_collectors.get(family) or \
        REGISTRY._names_to_collectors.get(family + "_total")
    return tuple(getattr(collector, "_labelnames", ()))


def test_build_info_carries_version_and_commit(tmp_path: Path, sqlite_url: str) -> None:
    from prometheus_client import generate_latest

    from waymark import __version__

    settings = make_settings(tmp_path, sqlite_url, commit="0123abcd")
    setup_process(settings)  # as each app worker does before create_app
    app = create_app(settings)
    text = generate_latest(scrape_registry(settings)).decode()
    assert f'waymark_build_info{{commit="0123abcd",version="{__version__}"}} 1.0' in text
    app.state.services.db.dispose()


def test_failed_and_finished_jobs_are_counted_once(tmp_path: Path) -> None:
    from huey import MemoryHuey

    from waymark.observability.wiring import watch_jobs

    huey = MemoryHuey("metrics-test", immediate=False)

    @huey.task(name="retention")
    def ok() -> None:
        pass

    @huey.task(name="backup_objects")
    def boom() -> None:
        raise RuntimeError("backup target unreachable")

    @huey.task(name="import")
    def counted_by_itself() -> None:
        raise RuntimeError("import failed")

    watch_jobs(huey, report_errors=False)

    def value(kind: str, status: str) -> float:
        return metrics.JOBS_FINISHED.labels(kind=kind, status=status)._value.get()

    before = {k: value(*k) for k in [("retention", "done"), ("backup_objects", "failed"),
                                     ("import", "failed")]}
    for task in (ok.s(), boom.s(), counted_by_itself.s()):
        huey.execute(task)
    assert value("retention", "done") == before[("retention", "done")] + 1
    assert value("backup_objects", "failed") == before[("backup_objects", "failed")] + 1
    assert value("import", "failed") == before[("import", "failed")]  # import_jobs counts it


def test_redis_failures_are_counted_by_error_type() -> None:
    import asyncio

    from tests.servers import LOOPBACK, free_port
    from waymark.backends.redis.hub import RedisHub, RedisUnavailable

    port = free_port()  # nothing listens there: a real connection refusal

    async def go() -> None:
        hub = RedisHub(f"redis://{LOOPBACK}:{port}/0")
        try:
            with pytest.raises(RedisUnavailable):
                await hub.ping()
            with pytest.raises(RedisUnavailable):  # degraded: fails fast, no new error
                await hub.ping()
        finally:
            await hub.close()

    def total() -> float:
        return sum(s.value for f in metrics.REDIS_ERRORS.collect() for s in f.samples
                   if s.name == "waymark_redis_errors_total")

    before = total()
    asyncio.run(go())
    assert total() == before + 1
    assert metrics.REDIS_ERRORS.labels(error="ConnectionError")._value.get() >= 1


def test_http_metrics_use_route_templates_and_count_every_status(clients) -> None:  # type: ignore[no-untyped-def]
    def count(route: str, status: str) -> float:
        return metrics.HTTP_REQUESTS.labels(route, "GET", status)._value.get()

    c = clients()
    before_ok = count("/api/v1/maps/{map_id}", "404")
    before_404 = count(metrics.UNMATCHED_ROUTE, "404")
    assert c.get("/api/v1/maps/doesnotexist").status_code == 404
    assert c.get("/definitely/not/here").status_code == 404
    assert count("/api/v1/maps/{map_id}", "404") == before_ok + 1
    assert count(metrics.UNMATCHED_ROUTE, "404") == before_404 + 1


def test_request_id_is_taken_from_the_client_or_generated(clients) -> None:  # type: ignore[no-untyped-def]
    c = clients()
    r = c.get("/healthz", headers={"X-Request-ID": "abc.DEF-123:4_5"})
    assert r.headers["x-request-id"] == "abc.DEF-123:4_5"
    r = c.get("/healthz", headers={"X-Request-ID": "no spaces <script>"})
    assert re.fullmatch(r"[0-9a-f]{24}", r.headers["x-request-id"])
    r2 = c.get("/healthz")
    assert r2.headers["x-request-id"] != r.headers["x-request-id"]


def test_access_line_and_error_stack_trace(tmp_path: Path, sqlite_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from litestar import get

    @get("/test-only/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom with password=hunter22")

    settings = make_settings(tmp_path, sqlite_url, slow_request_ms=0)
    setup_process(settings)  # JSON log lines, as in each app worker
    app = create_app(settings)
    app.register(boom)
    with TestClient(app) as client:
        capsys.readouterr()
        r = client.get("/test-only/boom", headers={"X-Request-ID": "req-boom-1",
                                                   "Authorization": "Bearer wmk_abcdefghijkl"})
        assert r.status_code == 500
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [r for r in records if r.get("exception")]
    assert errors and errors[0]["request_id"] == "req-boom-1"
    assert "Traceback" in errors[0]["exception"] and "RuntimeError" in errors[0]["exception"]
    access = [r for r in records if r.get("logger") == "waymark.access"]
    assert access[0]["status"] == 500 and access[0]["level"] == "error"
    assert access[0]["route"] == "/test-only/boom"
    assert "hunter22" not in out and "wmk_abcdefghijkl" not in out
    assert metrics.UNHANDLED_EXCEPTIONS.labels("RuntimeError")._value.get() >= 1
    app.state.services.db.dispose()


def test_in_flight_gauge_is_sampled_and_drops_to_zero_at_once() -> None:
    from waymark.observability.request_observer import InFlight

    class Gauge:
        def __init__(self) -> None:
            self.sets: list[int] = []

        def set(self, value: int) -> None:
            self.sets.append(value)

    gauge = Gauge()
    flight = InFlight(gauge)
    flight.add(1, 10.0)  # first request: shown at once
    flight.add(1, 10.2)
    flight.add(1, 10.4)  # within the second: counted, not written
    assert gauge.sets == [1] and flight.count == 3
    flight.add(1, 11.1)  # a second later: the gauge catches up
    assert gauge.sets == [1, 4]
    for t in (11.2, 11.3, 11.4):
        flight.add(-1, t)
    assert gauge.sets == [1, 4] and flight.count == 1
    flight.add(-1, 11.5)  # idle again: written at once, never left showing stale load
    assert gauge.sets == [1, 4, 0] and flight.count == 0
    flight.add(1, 11.6)
    flight.add(-1, 11.7)  # a short request between samples writes nothing
    assert gauge.sets == [1, 4, 0]


def test_access_lines_are_written_in_batches_in_order(capsys) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from waymark.observability.logging import LineBuffer

    async def run() -> list[str]:
        lines = LineBuffer(0.05, max_bytes=60)
        seen = []
        capsys.readouterr()
        lines.add("a\n")
        lines.add("b\n")
        seen.append(capsys.readouterr().out)  # gathered, not written yet
        await asyncio.sleep(0.1)
        seen.append(capsys.readouterr().out)  # the timer wrote both
        lines.add("c\n")
        lines.add("warning\n", urgent=True)  # at once, after what was pending
        seen.append(capsys.readouterr().out)
        lines.add("x" * 40 + "\n")
        lines.add("y" * 40 + "\n")  # over max_bytes: written without waiting
        seen.append(capsys.readouterr().out)
        lines.add("z\n")
        lines.flush()
        seen.append(capsys.readouterr().out)
        await asyncio.sleep(0.1)  # the flush cancelled the timer: nothing twice
        seen.append(capsys.readouterr().out)
        return seen

    assert asyncio.run(run()) == ["", "a\nb\n", "c\nwarning\n",
                                  "x" * 40 + "\n" + "y" * 40 + "\n", "z\n", ""]
    LineBuffer(60).add("off the loop\n")  # no event loop to flush it later: written at once
    assert capsys.readouterr().out == "off the loop\n"


def test_access_lines_pending_at_shutdown_are_written(tmp_path: Path, sqlite_url: str,
                                                      capsys) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, access_log_flush_ms=600_000))
    with TestClient(app) as client:
        capsys.readouterr()
        assert client.get("/healthz", headers={"X-Request-ID": "batched-1"}).status_code == 200
        assert "batched-1" not in capsys.readouterr().out  # waiting for its batch
    out = capsys.readouterr().out  # the lifespan ended: the batch is out
    access = [json.loads(line) for line in out.splitlines() if "batched-1" in line]
    assert len(access) == 1 and access[0]["route"] == "/healthz", out[-2000:]
    app.state.services.db.dispose()


@pytest.mark.parametrize("now", [0.0, 1764790962.0, 1764790962.641305, 1764790962.9999996,
                                 1764790963.000001, 4102444799.5])
def test_access_line_timestamps_match_the_clock(now: float) -> None:
    from datetime import UTC, datetime, timedelta

    from waymark.observability.logging import utc_timestamp

    utc_timestamp(now - 1)  # the cached second is the previous one: it must move on
    text = utc_timestamp(now)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text), text
    stamped = datetime.fromisoformat(text)
    assert abs(stamped - datetime.fromtimestamp(now, UTC)) <= timedelta(microseconds=1), text
    assert utc_timestamp(now) == text  # from the cache, the same


def test_slow_requests_are_flagged(tmp_path: Path, sqlite_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, slow_request_ms=1))
    with TestClient(app) as client:
        capsys.readouterr()
        client.get("/readyz")  # a database round trip, a store listing: over 1 ms
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "waymark.access"]
    assert access[0]["slow"] is True and access[0]["level"] == "warning"
    app.state.services.db.dispose()


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer wmk_abcdefghijklmnop", "wmk_abcdefghijklmnop"),
    ("token=abc123secret&x=1", "abc123secret"),
    ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
    ("postgresql://waymark:dbpass99@db/waymark", "dbpass99"),
    ("csrf_token=zzzyyyxxx", "zzzyyyxxx"),
    ("session_id: s3ss10n", "s3ss10n"),
])
def test_scrub_text_removes_credentials(text: str, secret: str) -> None:
    assert secret not in scrub_text(text)


def test_scrub_redacts_sensitive_keys_recursively() -> None:
    data = {"user": {"password": "x1", "name": "ok"}, "headers": {"Cookie": "a=b",
                                                                  "Accept": "json"}}
    out = scrub(data)
    assert out["user"] == {"password": REDACTED, "name": "ok"}
    assert out["headers"] == {"Cookie": REDACTED, "Accept": "json"}


def test_metrics_endpoint_on_the_app_needs_the_token(tmp_path: Path, sqlite_url: str) -> None:
    app = create_app(make_settings(tmp_path, sqlite_url, metrics_token="m" * 32))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert r.status_code == 200
        assert "waymark_http_requests_total" in r.text
    app.state.services.db.dispose()
    app = create_app(make_settings(tmp_path, sqlite_url))
    with TestClient(app) as client:  # no token: not on the app port at all
        assert client.get("/metrics").status_code == 404
    app.state.services.db.dispose()


def test_metrics_listener_app_checks_the_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite:///:memory:", metrics_token="t0ken")
    app = metrics_wsgi_app(settings)
    seen: list[str] = []

    def start_response(status: str, headers: list) -> None:  # type: ignore[type-arg]
        seen.append(status)

    app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET"}, start_response)
    body = b"".join(app({"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET",
                         "HTTP_AUTHORIZATION": "Bearer t0ken"}, start_response))
    assert seen == ["401 Unauthorized", "200 OK"]
    assert b"waymark_build_info" in body


def test_object_store_and_cache_and_db_metrics(app, alice) -> None:  # type: ignore[no-untyped-def]
    store_ops = metrics.STORE_DURATION.labels("put_if_absent")
    db_selects = metrics.DB_QUERY_DURATION.labels("select")

    def hist_count(child) -> float:  # type: ignore[no-untyped-def]
        return sum(b.get() for b in child._buckets)

    before_put, before_sel = hist_count(store_ops), hist_count(db_selects)
    cache_before = metrics.CACHE_REQUESTS.labels("process", "miss")._value.get()
    m = alice.create_map("Metrics")
    layer = m["layers"][0]["id"]
    r = alice.post(f"/api/v1/maps/{m['id']}/layers/{layer}/features", json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
        "properties": {}})
    assert r.status_code == 201
    for _ in range(2):  # the first read publishes, the second finds the snapshot cached
        r = alice.get(f"/api/v1/maps/{m['id']}/layers/{layer}/data")
        assert r.status_code == 200
    assert hist_count(db_selects) > before_sel
    assert hist_count(store_ops) > before_put
    assert metrics.CACHE_REQUESTS.labels("process", "miss")._value.get() \
        + metrics.CACHE_REQUESTS.labels("process", "hit")._value.get() > cache_before


def test_backup_success_time_only_moves_forward() -> None:
    gauge = metrics.BACKUP_LAST_SUCCESS
    start = gauge._value.get()
    gauge.set(start + 1000)  # the object backup just succeeded
    gauge.set(start + 10)  # replication reports an older last sync (idle database)
    assert gauge._value.get() == start + 1000
    gauge.set(start + 2000)
    assert gauge._value.get() == start + 2000
    gauge._value.set(start)  # leave the process-wide gauge as it was


def test_queue_depth_is_read_without_importing_huey(tmp_path: Path) -> None:
    """The serve process reads Huey's SQLite queue with sqlite3 (huey would bring redis and
    psycopg into it); it must count what Huey counts."""
    from huey import SqliteHuey

    from waymark.observability.metrics_server import _sqlite_queue_depth

    path = tmp_path / "jobs.db"
    assert _sqlite_queue_depth(path) == 0.0  # no queue file yet
    huey = SqliteHuey("waymark", filename=str(path))

    @huey.task()
    def job(n: int) -> int:
        return n

    assert _sqlite_queue_depth(path) == 0.0
    for n in range(3):
        job(n)
    assert _sqlite_queue_depth(path) == 3.0 == huey.pending_count()
    other = SqliteHuey("another", filename=str(path))  # another queue in the same file
    other.task()(lambda: None)()
    assert _sqlite_queue_depth(path) == 3.0


def test_redis_queue_depth_is_read_without_importing_huey(tmp_path: Path, redis_server) -> None:  # noqa: F811 - fixture
    """With Redis the serve process reads the length of Huey's list with the redis client
    alone; it must count what Huey counts."""
    from huey import RedisHuey

    from waymark.observability.metrics_server import ScrapeCollector

    collector = ScrapeCollector(make_settings(tmp_path, "sqlite://", redis_url=redis_server.url))
    assert collector._queue_depth() == 0.0
    huey = RedisHuey("waymark", url=redis_server.url)

    @huey.task()
    def job(n: int) -> int:
        return n

    for n in range(3):
        job(n)
    assert collector._queue_depth() == 3.0 == huey.pending_count()
