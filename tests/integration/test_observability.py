"""Observability against a real `waymark serve --workers 2` (granian) on loopback.

- metrics from two workers add up (requests made = requests counted);
- a full flow's stdout (JSON logs) holds no password, token, cookie or session id;
- real Prometheus + Alertmanager scrape the app; forced 5xx responses page a local webhook.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.servers import LOOPBACK, free_port, require_binary, wait_until

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Obs3rvability-s3cret-passw0rd"
QUERY_SECRET = "qs-s3cret-value-9f2"
STARTUP_S = 180  # a loaded 2-core CI machine can take a minute to import and migrate


class Served:
    def __init__(self, base: Path, port: int, metrics_port: int, proc: subprocess.Popen,
                 log_path: Path) -> None:
        self.base, self.port, self.metrics_port = base, port, metrics_port
        self.proc, self.log_path = proc, log_path

    @property
    def objects(self) -> Path:
        return self.base / "var" / "objects"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = dict(headers or {})
            if data is not None:
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def scrape(self) -> str:
        conn = http.client.HTTPConnection(LOOPBACK, self.metrics_port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            assert resp.status == 200
            return resp.read().decode()
        finally:
            conn.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("observed")
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WAYMARK_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"WAYMARK_DATA_DIR": str(base / "var"), "WAYMARK_PORT": str(port),
                "WAYMARK_METRICS_PORT": str(metrics_port), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_SESSION_STORE": "file",  # two workers share sessions
                "WAYMARK_SLOW_REQUEST_MS": "2000", "WAYMARK_SNAPSHOT_DELAY_MS": "50",
                "PYTHONUNBUFFERED": "1"})
    log_path = base / "stdout.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "waymark.cli", "serve", "--workers", "2"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base,
                                start_new_session=True)
    srv = Served(base, port, metrics_port, proc, log_path)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, f"waymark serve exited:\n{srv.logs()[-3000:]}"
            assert time.monotonic() < deadline, f"not up in {STARTUP_S}s:\n{srv.logs()[-3000:]}"
            # the job worker and both granian workers have imported the app (metric files),
            # and both workers serve (granian logs it once each one accepts connections)
            pids = {re.search(r"_(\d+)\.db$", f).group(1)
                    for f in glob.glob(str(base / "var" / "prometheus" / "counter_*.db"))}
            serving = all(f"Started worker-{n}" in srv.logs() for n in (1, 2))
            try:
                if len(pids) >= 3 and serving and srv.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield srv
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group this fixture started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # granian workers that were still starting may outlive the group leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# ---- metrics from several workers ---------------------------------------------------------
def _per_process_healthz(metrics_dir: Path) -> dict[str, float]:
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for path in glob.glob(str(metrics_dir / "counter_*.db")):
        pid = re.search(r"_(\d+)\.db$", path).group(1)
        for item in MmapedDict.read_all_values_from_file(path):
            key, value = item[0], item[1]
            _family, name, labels, _help = json.loads(key)
            if name == "waymark_http_requests_total" and labels.get("route") == "/healthz":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def test_metrics_from_two_workers_add_up(served: Served) -> None:
    def one(_i: int) -> int:
        return served.request("GET", "/healthz")[0]  # a new connection every time

    before = sample(served.scrape(), "waymark_http_requests_total", route="/healthz")
    made = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _round in range(10):  # until both workers have answered some
            statuses = list(pool.map(one, range(100)))
            assert statuses == [200] * 100
            made += 100
            per_process = _per_process_healthz(served.base / "var" / "prometheus")
            if sum(1 for v in per_process.values() if v > 0) >= 2:
                break
    after = sample(served.scrape(), "waymark_http_requests_total", route="/healthz")
    assert sum(1 for v in per_process.values() if v > 0) >= 2, per_process
    assert after - before == made, (before, after, made, per_process)
    text = served.scrape()
    assert sample(text, "waymark_http_request_duration_seconds_count", route="/healthz") >= made
    assert 'waymark_build_info{commit="' in text
    assert "waymark_jobs_queue_depth 0.0" in text


# ---- logs: request ids, access lines, no secrets --------------------------------------------
def test_full_flow_logs_are_json_with_request_ids_and_no_secrets(served: Served) -> None:
    s = served
    status, headers, body = s.request("POST", "/api/v1/auth/signup", {
        "email": "logscan@example.com", "password": PASSWORD, "display_name": "Log Scan"})
    assert status == 201, body
    user = json.loads(body)
    csrf = user["csrf_token"]
    cookie_header = headers["set-cookie"].split(";", 1)[0]
    session_id = cookie_header.split("=", 1)[1]
    status, headers, body = s.request("POST", "/api/v1/auth/login",
                                      {"email": "logscan@example.com", "password": PASSWORD})
    assert status == 200, body
    csrf = json.loads(body)["csrf_token"]
    cookie_header = headers["set-cookie"].split(";", 1)[0]
    session_id2 = cookie_header.split("=", 1)[1]
    auth = {"Cookie": cookie_header, "X-CSRF-Token": csrf}
    status, _, body = s.request("POST", "/api/v1/tokens", {"name": "ci", "scope": "write"},
                                headers=auth)
    assert status == 201, body
    raw_token = json.loads(body)["token"]
    bearer = {"Authorization": f"Bearer {raw_token}"}
    status, resp_headers, body = s.request(
        "POST", f"/api/v1/maps?token={QUERY_SECRET}&password={QUERY_SECRET}",
        {"title": "Logged map"}, headers={**bearer, "X-Request-ID": "flow-req-0001"})
    assert status == 201, body
    assert resp_headers["x-request-id"] == "flow-req-0001"
    map_id = json.loads(body)["id"]
    status, _, body = s.request("GET", f"/api/v1/maps/{map_id}/layers", headers=bearer)
    assert status == 200, body
    layer_id = json.loads(body)[0]["id"] if isinstance(json.loads(body), list) \
        else json.loads(body)["layers"][0]["id"]
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-3.19, 55.95]},
               "properties": {"name": "Castle"}}
    status, _, body = s.request("POST", f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                                feature, headers=auth)
    assert status == 201, body
    status, _, _ = s.request("GET", f"/api/v1/maps/{map_id}/layers/{layer_id}/data",
                             headers=auth)
    assert status in (200, 302, 303, 307)
    status, _, _ = s.request("POST", "/api/v1/auth/login",
                             {"email": "logscan@example.com", "password": PASSWORD + "x"})
    assert status in (400, 401, 403)
    status, _, _ = s.request("POST", "/api/v1/auth/password", {
        "current_password": PASSWORD, "new_password": PASSWORD + "-new"}, headers=auth)
    status, headers, _ = s.request("GET", "/no/such/page", headers={"X-Request-ID": "bad id!"})
    assert status == 404 and re.fullmatch(r"[0-9a-f]{24}", headers["x-request-id"])
    s.request("POST", "/api/v1/auth/logout", headers=auth)
    # the workers write access lines in batches: wait for the last request's line
    wait_until(lambda: '"route":"/api/v1/auth/logout"' in s.logs(), "access line of the logout")

    text = s.logs()
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]
    access = [r for r in records if r.get("logger") == "waymark.access"]
    assert access, text[-2000:]
    mine = [r for r in access if r.get("request_id") == "flow-req-0001"]
    assert len(mine) == 1, mine
    line = mine[0]
    assert line["route"] == "/api/v1/maps" and line["status"] == 201 and line["method"] == "POST"
    assert line["user_id"] == user["id"] and line["bytes"] > 0 and line["duration_ms"] > 0
    assert {"timestamp", "level", "slow"} <= set(line)
    assert any(r["route"] == "/api/v1/maps/{map_id}/layers/{layer_id}/features"
               for r in access), "route templates, not raw paths"
    assert any(r["status"] == 404 and r["route"] == "<unmatched>" for r in access)

    secrets = {"password": PASSWORD, "new password": PASSWORD + "-new",
               "api token": raw_token, "token body": raw_token.split("_", 1)[1],
               "session id": session_id, "rotated session id": session_id2,
               "csrf token": csrf, "query secret": QUERY_SECRET}
    leaked = {what: value for what, value in secrets.items() if value in text}
    assert not leaked, f"secrets in logs: {sorted(leaked)}"
    for needle in ("authorization", "cookie", "x-csrf-token", "set-cookie"):
        assert needle not in text.lower(), needle
    assert "?token=" not in text and "password=" not in text


# ---- end to end: Prometheus + Alertmanager + webhook ------------------------------------------
class _Sink(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _wait_http(port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"127.0.0.1:{port}{path} not ready")


def _get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_forced_5xx_pages_the_webhook_through_prometheus_and_alertmanager(
        served: Served, tmp_path: Path) -> None:
    prometheus = require_binary("prometheus", "prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "prometheus-alertmanager")

    # The deployed rules, with their `for:` durations shortened so the test takes seconds.
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/waymark.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    am_config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    sink = ThreadingHTTPServer((LOOPBACK, 0), _Sink)
    _Sink.received = []
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    webhook = f"http://{LOOPBACK}:{sink.server_address[1]}/alerts"
    am_config["receivers"][0]["webhook_configs"][0]["url"] = webhook
    am_config["route"].update({"group_wait": "1s", "group_interval": "1s"})
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    am_port, prom_port = free_port(), free_port()
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"{LOOPBACK}:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "waymark", "static_configs": [
            {"targets": [f"{LOOPBACK}:{served.metrics_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))

    procs: list[subprocess.Popen] = []
    moved = served.objects.with_name("objects.away")
    try:
        procs.append(_start([alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}",
                             f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address={LOOPBACK}:{am_port}",
                             "--cluster.listen-address="], tmp_path / "am.log"))
        procs.append(_start([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                             f"--web.listen-address={LOOPBACK}:{prom_port}"],
                            tmp_path / "prom.log"))
        _wait_http(am_port, "/-/ready")
        _wait_http(prom_port, "/-/ready")

        # Prometheus sees the app up, with its metrics.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            up = _get_json(prom_port, "/api/v1/query?query=up%7Bjob%3D%22waymark%22%7D")
            if up["data"]["result"] and up["data"]["result"][0]["value"][1] == "1":
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"app not scraped: {up}")

        # Force 5xx: take the object store away, so /readyz answers 503.
        served.objects.rename(moved)
        deadline = time.monotonic() + 120
        fired = None
        while time.monotonic() < deadline and fired is None:
            for _ in range(20):
                assert served.request("GET", "/readyz")[0] == 503
            for payload in _Sink.received:
                for alert in payload.get("alerts", []):
                    if alert["labels"].get("alertname") == "WaymarkHigh5xxRatio" \
                            and alert["status"] == "firing":
                        fired = alert
            time.sleep(0.5)
        assert fired is not None, (
            f"no alert at the webhook; prometheus alerts: "
            f"{_get_json(prom_port, '/api/v1/alerts')}; "
            f"am log: {(tmp_path / 'am.log').read_text()[-1500:]}")
        assert fired["labels"]["job"] == "waymark" and fired["labels"]["severity"] == "page"
        assert "of requests fail with 5xx" in fired["annotations"]["summary"]
        ratio = _get_json(prom_port, "/api/v1/query?query=job%3Awaymark_http_5xx%3Aratio_rate5m")
        assert float(ratio["data"]["result"][0]["value"][1]) > 0.05
    finally:
        if moved.exists():
            moved.rename(served.objects)
        for proc in reversed(procs):
            _stop(proc)
        sink.shutdown()
    assert served.request("GET", "/readyz")[0] == 200
    shutil.rmtree(tmp_path / "prom-data", ignore_errors=True)


# ---- blackbox: the shipped probe modules against the real app -----------------------------
def test_blackbox_modules_probe_the_real_app(served: Served, tmp_path: Path) -> None:
    blackbox = require_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    port = free_port()
    proc = _start([blackbox, f"--config.file={ROOT / 'deploy/blackbox/blackbox.yml'}",
                   f"--web.listen-address={LOOPBACK}:{port}"], tmp_path / "blackbox.log")
    try:
        _wait_http(port, "/-/healthy")
        app = f"http://{LOOPBACK}:{served.port}"

        def probe(module: str, target: str) -> float:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
            conn.request("GET", f"/probe?module={module}&target={target}")
            text = conn.getresponse().read().decode()
            conn.close()
            return sample(text, "probe_success")

        assert probe("waymark_healthz", f"{app}/healthz") == 1
        assert probe("waymark_readyz", f"{app}/readyz") == 1
        # the body check matters: a 200 that is not the health document fails the probe
        assert probe("waymark_healthz", f"{app}/login") == 0
        assert probe("waymark_healthz", f"{app}/no/such/page") == 0  # 404
        assert probe("waymark_https", f"{app}/healthz") == 0  # plain HTTP is not acceptable
    finally:
        _stop(proc)
