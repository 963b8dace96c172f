"""Application hardening: security headers on every response, a strict script policy the
pages actually meet, framing only for the embed route, secure cookies, secrets from files."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from tests.conftest import make_settings
from waymark.app import create_app
from waymark.basemaps.presets import load_presets
from waymark.security.headers import basemap_csp, content_security_policy
from waymark.settings import load_settings

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "waymark" / "templates"


def _csp(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        out[name] = value
    return out


def _assert_hardened(response, framing: str = "'none'") -> None:  # type: ignore[no-untyped-def]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = _csp(response)
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["object-src"] == "'none'" and csp["base-uri"] == "'self'"
    assert csp["frame-ancestors"] == framing


def test_every_kind_of_response_carries_the_headers(alice, anon) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Headers", visibility="public")
    responses = {
        "page": anon.get("/"),
        "map page": anon.get(f"/m/{m['id']}"),
        "api json": anon.get(f"/api/v1/maps/{m['id']}"),
        "api error": anon.get("/api/v1/maps/nope"),
        "unrouted 404": anon.get("/no/such/path"),
        "405": anon.client.put("/healthz"),
        "csrf refusal": alice.client.post("/api/v1/maps", json={"title": "x"}),
        "health": anon.get("/healthz"),
        "openapi": anon.get("/api/openapi.json"),
    }
    assert responses["csrf refusal"].status_code == 403
    assert responses["unrouted 404"].status_code == 404
    for what, response in responses.items():
        try:
            _assert_hardened(response)
            assert response.headers["x-frame-options"] == "DENY"
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{what}: {exc!r} in {dict(response.headers)}") from None


def test_only_the_embed_route_may_be_framed(alice, anon) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Embeddable", visibility="public")
    embed = anon.get(f"/m/{m['id']}/embed")
    assert embed.status_code == 200 and "x-frame-options" not in embed.headers
    _assert_hardened(embed, framing="*")
    for path in (f"/m/{m['id']}", f"/m/{m['id']}/embed/extra", f"/m/{m['id']}/embedx", "/login"):
        r = anon.get(path)
        assert _csp(r)["frame-ancestors"] == "'none'", path
        assert r.headers["x-frame-options"] == "DENY", path


def test_rate_limited_responses_carry_the_headers(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, rate_limits="login=1/day"))
    with TestClient(app) as client:
        body = {"email": "x@example.com", "password": "wrong password 1"}
        assert client.post("/api/v1/auth/login", json=body).status_code == 401
        r = client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 429
        _assert_hardened(r)
    app.state.services.db.dispose()


def test_login_is_throttled_by_default(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    """No WAYMARK_RATE_LIMITS: the default login budget (10/minute per IP) applies. The
    attempts are cheap (refused as non-JSON, yet counted), so all land in one window; a
    run that straddles a minute boundary is repeated once."""
    app = create_app(make_settings(tmp_path, sqlite_url))
    with TestClient(app) as client:
        for _attempt in range(2):
            start = time.time() // 60
            codes = [client.post("/api/v1/auth/login", content=b"guess").status_code
                     for _ in range(11)]
            if time.time() // 60 == start:
                break
            time.sleep(61 - time.time() % 60)
    app.state.services.db.dispose()
    assert codes == [415] * 10 + [429]


def test_basemap_origin_is_the_only_extra_image_source() -> None:
    presets = load_presets("", legacy_url="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tile.example.org;" in basemap_csp(presets)
    assert "img-src 'self' data: blob:;" in content_security_policy()


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_have_no_inline_script(template: Path) -> None:
    """What the CSP forbids must not be in the pages: inline <script> bodies, on* handler
    attributes, javascript: URLs."""
    html = template.read_text()
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
        assert "src=" in tag, f"{template.name}: inline script {tag}"
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.IGNORECASE), template.name
    assert "javascript:" not in html.lower(), template.name


def _session_cookie_header(response) -> str:  # type: ignore[no-untyped-def]
    return next(h for h in response.headers.get_list("set-cookie")
                if h.startswith("waymark_session="))


@pytest.mark.parametrize("secure", [True, False])
def test_cookie_secure_setting(tmp_path, sqlite_url, secure: bool) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path, sqlite_url, cookie_secure=secure))
    with TestClient(app, base_url="https://testserver.local") as client:
        r = client.post("/api/v1/auth/signup", json={"email": "s@example.com",
                                                     "password": "a long enough passphrase"})
        assert r.status_code == 201
        attrs = [a.strip().lower() for a in _session_cookie_header(r).split(";")]
    app.state.services.db.dispose()
    assert ("secure" in attrs) is secure
    assert "httponly" in attrs and "samesite=lax" in attrs


def test_prod_profile_turns_secure_cookies_on() -> None:
    assert load_settings(environ={"WAYMARK_ENV": "prod"}).cookie_secure is True


def test_secrets_from_files_are_used_and_never_shown(tmp_path: Path) -> None:
    secret = "s3cr3t-" + "x" * 40
    (tmp_path / "key").write_text(secret + "\n")
    (tmp_path / "db").write_text("postgresql+psycopg://app:dbpass123@db.internal/waymark\n")
    s = load_settings(environ={"WAYMARK_SECRET_KEY_FILE": str(tmp_path / "key"),
                               "WAYMARK_DATABASE_URL_FILE": str(tmp_path / "db"),
                               "WAYMARK_SECRET_KEY": "ignored-when-the-file-is-set"})
    assert s.secret_key == secret
    assert s.database_url.endswith("@db.internal/waymark")
    shown = repr(s.redacted())
    assert secret not in shown and "dbpass123" not in shown


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/api/v1/maps/{map_id}/members/{big}"),
    ("DELETE", "/api/v1/maps/{map_id}/members/{big}"),
    ("DELETE", "/api/v1/tokens/{big}"),
])
def test_integer_ids_beyond_the_database_range_are_not_found(alice, method: str,  # type: ignore[no-untyped-def]
                                                            path: str) -> None:
    """Found by schemathesis: a 24-digit id reached SQLite and came back as a 500."""
    m = alice.create_map("Big ids")
    url = path.format(map_id=m["id"], big=407531123940655884140544)
    r = alice.request(method, url, json={"role": "editor"} if method == "PATCH" else None)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


def test_huge_paging_numbers_are_not_server_errors(alice) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Paging")
    layer = alice.get(f"/api/v1/maps/{m['id']}/layers").json()[0]["id"]
    big = 10**24
    for url in (f"/api/v1/maps?offset={big}", f"/api/v1/maps?limit={big}",
                f"/api/v1/maps/{m['id']}/history?before={big}",
                f"/api/v1/maps/{m['id']}/history?before=-{big}",
                f"/api/v1/maps/{m['id']}/layers/{layer}/history?before={big}",
                f"/api/v1/maps/{m['id']}/layers/{layer}/features?limit={big}"):
        r = alice.get(url)
        assert r.status_code == 200, (url, r.text)
    assert alice.get(f"/api/v1/maps?scope=mine&offset={big}").json() == []
