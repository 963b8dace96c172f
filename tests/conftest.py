"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL for `client`),
the app on top of it, and API clients that log in and send the CSRF header."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.servers import moto_server, pgbouncer_server, postgres_server  # noqa: F401 - fixtures
from waymark.app import create_app
from waymark.db.migrate import upgrade
from waymark.settings import Settings, load_settings


def _geo_data() -> Path:
    """The real-world geodata corpus kept in the repository (tests/data/geo, see its
    SOURCES.md); WAYMARK_GEO_DATA points the tests at another copy."""
    if os.environ.get("WAYMARK_GEO_DATA"):
        return Path(os.environ["WAYMARK_GEO_DATA"])
    return Path(__file__).resolve().parent / "data" / "geo"


GEO_DATA = _geo_data()
PASSWORD = "correct horse battery staple"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_counter = itertools.count()


@pytest.fixture(scope="session")
def geo_data() -> Path:
    if not GEO_DATA.is_dir():
        pytest.fail(f"geodata corpus not found at {GEO_DATA}")
    return GEO_DATA


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server) -> str:  # noqa: F811 - fixture
    url = postgres_server.create_database("waymark_template")
    upgrade(url)
    return "waymark_template"


def _fresh_sqlite(tmp_path: Path, template: Path) -> str:
    path = tmp_path / "waymark.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def _fresh_postgres(server, template: str) -> str:  # type: ignore[no-untyped-def]
    import psycopg

    name = f"t{next(_counter)}_{id(server) % 10000}"
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.url(name)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return _fresh_sqlite(tmp_path, sqlite_template)


def fresh_database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    """A fresh, migrated database: "sqlite", "postgres", or "pgbouncer" (PostgreSQL through
    PgBouncer in transaction mode; settings need WAYMARK_DB_TRANSACTION_POOLER, see
    `pooler_settings`)."""
    if kind == "sqlite":
        return _fresh_sqlite(tmp_path, request.getfixturevalue("sqlite_template"))
    server = request.getfixturevalue("postgres_server")
    url = _fresh_postgres(server, request.getfixturevalue("postgres_template"))
    if kind == "pgbouncer":
        return request.getfixturevalue("pgbouncer_server").url(url.rsplit("/", 1)[1])
    return url


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# For a subset of tests: the same on SQLite, PostgreSQL and PostgreSQL through PgBouncer.
WITH_PGBOUNCER = pytest.mark.parametrize(
    "database_url", [*DATABASES, pytest.param("pgbouncer", marks=pytest.mark.postgres)],
    indirect=True)


def pooler_settings(request: pytest.FixtureRequest, fixture: str = "database_url") -> dict[str, Any]:
    """Settings overrides for the database a parametrised fixture picked."""
    callspec = getattr(request.node, "callspec", None)
    kind = callspec.params.get(fixture) if callspec else None
    return {"db_transaction_pooler": True} if kind == "pgbouncer" else {}


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database; tests using it run on SQLite and on PostgreSQL."""
    return fresh_database(request, request.param, tmp_path)


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "var", "database_url": database_url,
                              "jobs_immediate": True, "demo_data": False}
    values.update(overrides)
    return load_settings(environ={}, **values)


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Litestar]:
    application = create_app(settings)
    yield application
    application.state.services.db.dispose()


class ApiClient:
    """A TestClient that remembers its CSRF token and sends it on writes."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf: str | None = None
        self.token: str | None = None
        self.user: dict[str, Any] | None = None

    def request(self, method: str, url: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        elif self.csrf and method.upper() in UNSAFE:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.request("DELETE", url, **kw)

    def signup(self, email: str, password: str = PASSWORD, name: str = "") -> dict[str, Any]:
        r = self.client.post("/api/v1/auth/signup",
                             json={"email": email, "password": password, "display_name": name})
        assert r.status_code == 201, r.text
        self.user = r.json()
        self.csrf = self.user["csrf_token"]
        return self.user

    def login(self, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        if r.status_code == 200:
            self.user = r.json()
            self.csrf = self.user["csrf_token"]
        return r

    # conveniences for tests
    def create_map(self, title: str = "Test map", **fields: Any) -> dict[str, Any]:
        r = self.post("/api/v1/maps", json={"title": title, **fields})
        assert r.status_code == 201, r.text
        return r.json()


def _client_factory(app: Litestar) -> Iterator[Any]:
    """make() -> a new anonymous ApiClient with its own cookie jar, on the same app."""
    opened: list[TestClient] = []

    def make() -> ApiClient:
        tc = TestClient(app)
        tc.__enter__()
        opened.append(tc)
        return ApiClient(tc)

    yield make
    for tc in reversed(opened):
        tc.__exit__(None, None, None)


@pytest.fixture
def clients(app: Litestar) -> Iterator[Any]:
    yield from _client_factory(app)


@pytest.fixture
def anon(clients) -> ApiClient:  # type: ignore[no-untyped-def]
    return clients()


@pytest.fixture
def alice(clients) -> ApiClient:  # type: ignore[no-untyped-def]
    c = clients()
    c.signup("alice@example.com", name="Alice")
    return c


@pytest.fixture
def bob(clients) -> ApiClient:  # type: ignore[no-untyped-def]
    c = clients()
    c.signup("bob@example.com", name="Bob")
    return c


@pytest.fixture
def db_app(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Litestar]:
    """The app on SQLite and on PostgreSQL (parametrised through database_url)."""
    application = create_app(make_settings(tmp_path, database_url, **pooler_settings(request)))
    yield application
    application.state.services.db.dispose()


@pytest.fixture
def db_clients(db_app: Litestar) -> Iterator[Any]:
    """Like `clients`, on SQLite and on PostgreSQL."""
    yield from _client_factory(db_app)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, and later tests that call asyncio.run() would fail."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path).replace("\\", "/"))
