"""Error tracking: a local fake Sentry ingest server (real HTTP on loopback) receives exactly
one event for an unhandled exception, carrying the request id and release, and no secrets."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from litestar import get
from litestar.testing import TestClient

from tests.conftest import make_settings
from tests.servers import LOOPBACK
from waymark.app import create_app, setup_process
from waymark.observability.wiring import RELEASE

SECRETS = {
    "password": "Hunter2-Sentry-Passw0rd",
    "bearer": "wmk_sentrytokenvalue1234567890",
    "cookie": "sess-cookie-value-abcdef123",
    "csrf": "csrf-token-value-xyz987",
    "query": "query-secret-qwerty",
}


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Items of a Sentry envelope: (item header, payload)."""
    items = []
    _header, _, rest = body.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_header = json.loads(line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1:]
        items.append((item_header, payload))
    return items


class Ingest(BaseHTTPRequestHandler):
    envelopes: ClassVar[list[bytes]] = []
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        type(self).envelopes.append(body)
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingest() -> Iterator[ThreadingHTTPServer]:
    Ingest.envelopes, Ingest.paths = [], []
    server = ThreadingHTTPServer((LOOPBACK, 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def reset_sentry() -> Iterator[None]:
    yield
    import sentry_sdk

    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.init()  # no DSN: a disabled client for the rest of the session


def events(envelopes: list[bytes]) -> list[dict[str, Any]]:
    found = []
    for envelope in envelopes:
        for header, payload in parse_envelope(envelope):
            if header.get("type") == "event":
                found.append(json.loads(payload))
    return found


def test_one_event_per_unhandled_exception_with_request_id_and_no_secrets(
        tmp_path: Path, sqlite_url: str, ingest: ThreadingHTTPServer, reset_sentry: None) -> None:
    import sentry_sdk

    dsn = f"http://publickey@{LOOPBACK}:{ingest.server_address[1]}/42"
    settings = make_settings(tmp_path, sqlite_url, sentry_dsn=dsn, commit="abc123")
    setup_process(settings)  # as each app worker does before create_app
    app = create_app(settings)

    @get("/test-only/crash")
    async def crash() -> None:
        password = SECRETS["password"]  # a local variable that must not be sent
        raise RuntimeError(f"database said no (password={password})")

    app.register(crash)
    with TestClient(app) as client:
        client.cookies.set("waymark_session", SECRETS["cookie"])
        r = client.get(f"/test-only/crash?token={SECRETS['query']}", headers={
            "X-Request-ID": "sentry-req-0001", "Authorization": f"Bearer {SECRETS['bearer']}",
            "X-CSRF-Token": SECRETS["csrf"]})
        assert r.status_code == 500
        assert r.headers["x-request-id"] == "sentry-req-0001"
        # expected errors are not reported
        assert client.get("/api/v1/maps/nope").status_code == 404
        assert client.get("/no/such/route").status_code == 404
    sentry_sdk.flush(timeout=10)
    deadline = time.monotonic() + 10
    while not events(Ingest.envelopes) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)

    found = events(Ingest.envelopes)
    assert len(found) == 1, found
    event = found[0]
    assert Ingest.paths[0].startswith("/api/42/envelope/")
    assert event["tags"]["request_id"] == "sentry-req-0001"
    assert event["release"] == RELEASE
    assert event["tags"]["commit"] == "abc123"
    assert event["tags"]["route"] == "/test-only/crash"
    values = event["exception"]["values"]
    assert values[-1]["type"] == "RuntimeError"
    assert values[-1]["stacktrace"]["frames"], "stack trace included"
    raw = b"".join(Ingest.envelopes).decode(errors="replace")
    leaked = [name for name, value in SECRETS.items() if value in raw]
    assert not leaked, f"secrets sent to error tracking: {leaked}"
    assert '"vars"' not in raw
    app.state.services.db.dispose()


def test_no_dsn_means_no_error_tracking(
        tmp_path: Path, sqlite_url: str, ingest: ThreadingHTTPServer, reset_sentry: None) -> None:
    import sentry_sdk

    settings = make_settings(tmp_path, sqlite_url)
    setup_process(settings)
    assert sentry_sdk.get_client().dsn is None  # nothing started without a DSN
    # an app whose settings have no DSN reports nothing, even in a process where error
    # tracking was started for another app's settings (create_app keeps no global switch)
    dsn = f"http://publickey@{LOOPBACK}:{ingest.server_address[1]}/42"
    setup_process(dataclasses.replace(settings, sentry_dsn=dsn))
    assert sentry_sdk.get_client().dsn == dsn
    app = create_app(settings)

    @get("/test-only/crash")
    async def crash() -> None:
        raise RuntimeError("not reported")

    app.register(crash)
    with TestClient(app) as client:
        assert client.get("/test-only/crash").status_code == 500
    sentry_sdk.flush(timeout=10)
    assert events(Ingest.envelopes) == []
    app.state.services.db.dispose()
