"""A database that cannot serve (unreachable, or a replica refusing writes during a
fail-over) gives 503 with Retry-After in the one error format, never a 500."""

from __future__ import annotations

import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import _fresh_postgres, make_settings
from waymark.app import create_app
from waymark.db.errors import RETRY_AFTER_SECONDS

pytestmark = pytest.mark.postgres


def _assert_unavailable(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    error = response.json()["error"]
    assert error["code"] == "database_unavailable" and "retry" in error["message"]
    assert error["details"] == {"retry_after": RETRY_AFTER_SECONDS}


def test_unreachable_database_answers_503(tmp_path) -> None:
    from tests.servers import free_port

    app = create_app(make_settings(
        tmp_path, f"postgresql+psycopg://waymark@127.0.0.1:{free_port()}/waymark"))
    try:
        with TestClient(app) as client:
            _assert_unavailable(client.get("/api/v1/maps"))
            r = client.post("/api/v1/auth/signup", json={"email": "a@example.com",
                                                         "password": "correct horse battery"})
            _assert_unavailable(r)
            assert client.get("/healthz").status_code == 200  # the process itself is fine
    finally:
        app.state.services.db.dispose()


def test_writes_refused_by_a_read_only_database_answer_503(tmp_path, postgres_server,
                                                          postgres_template) -> None:
    url = _fresh_postgres(postgres_server, postgres_template)
    app = create_app(make_settings(tmp_path, url))
    try:
        with TestClient(app) as client:
            r = client.post("/api/v1/auth/signup", json={"email": "a@example.com",
                                                         "password": "correct horse battery"})
            assert r.status_code == 201
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            # what a primary demoted to a replica does: every write transaction is refused
            with psycopg.connect(postgres_server.conninfo(url.rsplit("/", 1)[1]),
                                 autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" '
                             "SET default_transaction_read_only = on")
            app.state.services.db.engine.dispose()  # new sessions pick the setting up
            _assert_unavailable(client.post("/api/v1/maps", json={"title": "refused"}))
            assert client.get("/api/v1/maps").status_code == 200  # reads still served
    finally:
        app.state.services.db.dispose()
