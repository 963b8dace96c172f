"""Accounts: sign-up, log-in, sessions and CSRF, password change, API tokens."""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from waymark.accounts.sessions import COOKIE
from waymark.db.models import ApiToken, User


def _error(r, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def _session_cookie(r) -> str:  # type: ignore[no-untyped-def]
    """The value of the session cookie set by this response."""
    for header in r.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        if COOKIE in jar:
            return jar[COOKIE].value
    raise AssertionError(f"no {COOKIE} cookie in {r.headers.get_list('set-cookie')}")


# ---- sign-up ---------------------------------------------------------------------------
def test_signup_form_states_the_rule_the_server_applies(anon) -> None:  # type: ignore[no-untyped-def]
    """What the form says and checks (minlength) is what the API enforces: one rule."""
    import re

    page = anon.client.get("/signup")
    assert page.status_code == 200
    minimum = int(re.search(r'minlength="(\d+)"', page.text).group(1))
    assert f"At least {minimum} characters" in page.text
    r = anon.client.post("/api/v1/auth/signup", json={
        "email": "exact@example.com", "password": ("tramp-oak-sky" * 2)[:minimum]})
    assert r.status_code == 201, r.text  # as long as the form asks: accepted
    err = _error(anon.client.post("/api/v1/auth/signup", json={
        "email": "short@example.com", "password": ("tramp-oak-sky" * 2)[:minimum - 1]}),
        422, "invalid")
    assert err["details"]["field"] == "password" and str(minimum) in err["message"]


def test_signup_logs_in_and_returns_the_user(anon) -> None:  # type: ignore[no-untyped-def]
    user = anon.signup("Carol@Example.com ", name="Carol")
    assert user["email"] == "carol@example.com"  # normalised
    assert user["display_name"] == "Carol" and user["csrf_token"]
    assert "password" not in str(user).lower()
    me = anon.get("/api/v1/auth/me").json()
    assert me["id"] == user["id"] and me["via"] == "session" and me["scope"] == "write"


def test_signup_display_name_defaults_to_the_local_part(anon) -> None:  # type: ignore[no-untyped-def]
    assert anon.signup("dora@example.com")["display_name"] == "dora"


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email", "password": PASSWORD}, "email"),
    ({"email": "", "password": PASSWORD}, "email"),
    ({"password": PASSWORD}, "email"),
    ({"email": "a b@example.com", "password": PASSWORD}, "email"),
    ({"email": "x@example.com", "password": "short"}, "password"),
    ({"email": "x@example.com"}, "password"),
    ({"email": "x@example.com", "password": "aaaaaaaaaaaaaaaa"}, "password"),  # repetitive
    ({"email": "x@example.com", "password": "abababababab"}, "password"),  # 2 distinct chars
    ({"email": "samesame@example.com", "password": "SameSame@example.com"}, "password"),
    ({"email": "x@example.com", "password": "Ab3$" * 300}, "password"),  # over 1024
    ({"email": "x@example.com", "password": PASSWORD, "display_name": "n" * 101}, "display_name"),
])
def test_signup_validation_names_the_field(anon, body, field) -> None:  # type: ignore[no-untyped-def]
    err = _error(anon.client.post("/api/v1/auth/signup", json=body), 422, "invalid")
    assert err["details"]["field"] == field
    assert anon.get("/api/v1/auth/me").status_code == 401  # no half-created session


def test_password_rules_accept_a_reasonable_password(anon) -> None:  # type: ignore[no-untyped-def]
    r = anon.client.post("/api/v1/auth/signup",
                         json={"email": "ok@example.com", "password": "abcd" * 3})  # 12, 4 distinct
    assert r.status_code == 201, r.text


def test_signup_duplicate_email_is_409(clients, alice) -> None:  # type: ignore[no-untyped-def]
    for email in ("alice@example.com", "ALICE@example.com", " alice@example.com"):
        r = clients().client.post("/api/v1/auth/signup",
                                  json={"email": email, "password": "another password 1"})
        err = _error(r, 409, "email_taken")
        assert err["details"]["field"] == "email"
    # the original account is untouched
    assert clients().login("alice@example.com").status_code == 200


def test_signup_body_must_be_a_json_object(anon) -> None:  # type: ignore[no-untyped-def]
    _error(anon.client.post("/api/v1/auth/signup", json=["alice@example.com"]), 422, "invalid_body")


@pytest.mark.parametrize("path", ["/api/v1/auth/signup", "/api/v1/auth/login"])
@pytest.mark.parametrize("content_type, content", [
    ("application/x-www-form-urlencoded", b"email=eve%40example.com&password=correct+horse+battery"),
    ("text/plain", b'{"email": "eve@example.com", "password": "correct horse battery"}'),
    ("multipart/form-data; boundary=x", (b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
                                        b'eve@example.com\r\n--x--\r\n')),
])
def test_signup_and_login_refuse_non_json(anon, path, content_type, content) -> None:  # type: ignore[no-untyped-def]
    """A cross-site form can post these content types without a preflight; JSON it cannot."""
    r = anon.client.post(path, content=content, headers={"Content-Type": content_type})
    _error(r, 415, "unsupported_media_type")
    assert COOKIE not in r.cookies


def test_signup_can_be_closed(tmp_path, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    from litestar.testing import TestClient

    from tests.conftest import make_settings
    from waymark.app import create_app

    app = create_app(make_settings(tmp_path, sqlite_url, allow_signup=False))
    try:
        with TestClient(app) as tc:
            r = tc.post("/api/v1/auth/signup", json={"email": "x@example.com", "password": PASSWORD})
            _error(r, 403, "signup_closed")
    finally:
        app.state.services.db.dispose()


# ---- log-in and sessions ---------------------------------------------------------------
def test_login_wrong_password_and_unknown_email_look_the_same(clients, alice) -> None:  # type: ignore[no-untyped-def]
    c = clients()
    wrong = c.login("alice@example.com", "not the password at all")
    unknown = c.login("nobody@example.com", PASSWORD)
    e1, e2 = _error(wrong, 401, "invalid_credentials"), _error(unknown, 401, "invalid_credentials")
    assert e1 == e2
    assert c.get("/api/v1/auth/me").status_code == 401
    ok = c.login("ALICE@example.com", PASSWORD)  # e-mail is case-insensitive
    assert ok.status_code == 200 and ok.json()["id"] == alice.user["id"]


def test_session_cookie_flags(anon) -> None:  # type: ignore[no-untyped-def]
    r = anon.client.post("/api/v1/auth/signup",
                         json={"email": "flags@example.com", "password": PASSWORD})
    assert r.status_code == 201
    header = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert "httponly" in attrs, header
    assert attrs.get("samesite", "").lower() == "samesite=lax", header
    assert attrs.get("path") == "Path=/", header
    assert len(_session_cookie(r)) >= 16  # an unguessable id, not the user's data


def test_login_rotates_the_session_id(clients, alice) -> None:  # type: ignore[no-untyped-def]
    c = clients()
    first = c.login("alice@example.com")
    old = _session_cookie(first)
    second = c.login("alice@example.com")
    new = _session_cookie(second)
    assert new != old
    # the pre-login session is gone server-side: replaying its cookie is anonymous
    replay = clients()
    replay.client.cookies.set(COOKIE, old)
    assert replay.get("/api/v1/auth/me").status_code == 401
    assert c.get("/api/v1/auth/me").status_code == 200


def test_login_ignores_a_planted_session_id(clients, alice) -> None:  # type: ignore[no-untyped-def]
    """Session fixation: an attacker-chosen cookie must not become the logged-in session."""
    planted = "attacker-chosen-session-id-0123456789"
    victim = clients()
    victim.client.cookies.set(COOKIE, planted)
    r = victim.login("alice@example.com")
    assert r.status_code == 200
    assert _session_cookie(r) != planted
    attacker = clients()
    attacker.client.cookies.set(COOKIE, planted)
    assert attacker.get("/api/v1/auth/me").status_code == 401


def test_logout_ends_the_session_server_side(clients, alice) -> None:  # type: ignore[no-untyped-def]
    cookie = alice.client.cookies.get(COOKIE)
    assert cookie and alice.get("/api/v1/auth/me").status_code == 200
    r = alice.post("/api/v1/auth/logout")
    assert r.status_code == 204
    assert alice.get("/api/v1/auth/me").status_code == 401
    replay = clients()  # someone who kept a copy of the cookie
    replay.client.cookies.set(COOKIE, cookie)
    replay.csrf = alice.csrf
    _error(replay.get("/api/v1/auth/me"), 401, "login_required")
    _error(replay.post("/api/v1/maps", json={"title": "after logout"}), 401, "login_required")


def test_logout_needs_csrf(alice) -> None:  # type: ignore[no-untyped-def]
    """Otherwise any site could log the user out (a nuisance, but a real CSRF)."""
    _error(alice.client.post("/api/v1/auth/logout"), 403, "csrf_failed")
    assert alice.get("/api/v1/auth/me").status_code == 200


def test_me_requires_login(anon) -> None:  # type: ignore[no-untyped-def]
    _error(anon.get("/api/v1/auth/me"), 401, "login_required")


# ---- CSRF ------------------------------------------------------------------------------
def test_cookie_write_without_csrf_header_is_refused(alice) -> None:  # type: ignore[no-untyped-def]
    _error(alice.client.post("/api/v1/maps", json={"title": "x"}), 403, "csrf_failed")
    _error(alice.client.post("/api/v1/maps", json={"title": "x"},
                             headers={"X-CSRF-Token": alice.csrf + "x"}), 403, "csrf_failed")
    _error(alice.client.post("/api/v1/maps", json={"title": "x"},
                             headers={"X-CSRF-Token": ""}), 403, "csrf_failed")
    assert alice.get("/api/v1/maps?scope=mine").json() == []  # nothing was created
    assert alice.post("/api/v1/maps", json={"title": "x"}).status_code == 201


def test_csrf_token_of_another_session_is_refused(clients, alice, bob) -> None:  # type: ignore[no-untyped-def]
    r = alice.client.post("/api/v1/maps", json={"title": "x"}, headers={"X-CSRF-Token": bob.csrf})
    _error(r, 403, "csrf_failed")
    second = clients()
    second.login("alice@example.com")
    assert second.csrf != alice.csrf  # a token per session, not per user
    _error(second.client.post("/api/v1/maps", json={"title": "x"},
                              headers={"X-CSRF-Token": alice.csrf}), 403, "csrf_failed")


def test_cookie_reads_need_no_csrf(alice) -> None:  # type: ignore[no-untyped-def]
    assert alice.client.get("/api/v1/auth/me").status_code == 200
    assert alice.client.get("/api/v1/maps").status_code == 200


def test_me_returns_the_sessions_csrf_token(alice) -> None:  # type: ignore[no-untyped-def]
    assert alice.get("/api/v1/auth/me").json()["csrf_token"] == alice.csrf


# ---- password change -------------------------------------------------------------------
NEW_PASSWORD = "a much better passphrase"


def test_password_change_ends_other_sessions(clients, alice) -> None:  # type: ignore[no-untyped-def]
    other = clients()
    assert other.login("alice@example.com").status_code == 200
    r = alice.post("/api/v1/auth/password",
                   json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    # the other session is over, for reads and writes
    _error(other.get("/api/v1/auth/me"), 401)
    _error(other.post("/api/v1/maps", json={"title": "x"}), 401)
    # this session goes on (renewed; the CSRF token is read back from /me)
    me = alice.get("/api/v1/auth/me")
    assert me.status_code == 200
    alice.csrf = me.json()["csrf_token"]
    assert alice.post("/api/v1/maps", json={"title": "still here"}).status_code == 201
    # only the new password logs in
    assert clients().login("alice@example.com", PASSWORD).status_code == 401
    assert clients().login("alice@example.com", NEW_PASSWORD).status_code == 200


def test_password_change_rotates_this_sessions_id(clients, alice) -> None:  # type: ignore[no-untyped-def]
    old = alice.client.cookies.get(COOKIE)
    r = alice.post("/api/v1/auth/password",
                   json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 204
    assert _session_cookie(r) != old
    replay = clients()
    replay.client.cookies.set(COOKIE, old)
    assert replay.get("/api/v1/auth/me").status_code == 401


def test_password_change_checks_current_password_and_rules(clients, alice) -> None:  # type: ignore[no-untyped-def]
    _error(alice.post("/api/v1/auth/password",
                      json={"current_password": "wrong wrong wrong", "new_password": NEW_PASSWORD}),
           401, "invalid_credentials")
    err = _error(alice.post("/api/v1/auth/password",
                            json={"current_password": PASSWORD, "new_password": "short"}), 422)
    assert err["details"]["field"] == "password"
    # neither attempt changed anything: the old password still works and the session lives
    assert alice.get("/api/v1/auth/me").status_code == 200
    assert clients().login("alice@example.com", PASSWORD).status_code == 200


def test_password_change_needs_a_session(alice) -> None:  # type: ignore[no-untyped-def]
    token = alice.post("/api/v1/tokens", json={"name": "t", "scope": "write"}).json()["token"]
    r = alice.client.post("/api/v1/auth/password", headers={"Authorization": f"Bearer {token}"},
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    _error(r, 403, "session_required")
    _error(alice.client.post("/api/v1/auth/password",
                             json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
           403, "csrf_failed")


# ---- API tokens ------------------------------------------------------------------------
def _token(client, scope: str = "write", name: str = "script") -> dict:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/tokens", json={"name": name, "scope": scope})
    assert r.status_code == 201, r.text
    return r.json()


def test_token_is_shown_once_and_stored_hashed(app, alice) -> None:  # type: ignore[no-untyped-def]
    created = _token(alice, "read")
    raw = created["token"]
    assert raw.startswith("wmk_") and len(raw) > 30
    assert created["scope"] == "read" and raw.startswith(created["prefix"])
    with app.state.services.db.read() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.id == created["id"]))
        stored = [str(getattr(row, c.key)) for c in ApiToken.__table__.columns]
    assert not any(raw in value for value in stored), stored
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    # listing never shows it again
    listed = alice.get("/api/v1/tokens").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and raw not in str(listed)


def test_token_authenticates_without_cookie_or_csrf(clients, alice) -> None:  # type: ignore[no-untyped-def]
    raw = _token(alice, "write")["token"]
    c = clients()
    c.token = raw
    me = c.get("/api/v1/auth/me").json()
    assert me["id"] == alice.user["id"] and me["via"] == "token" and me["scope"] == "write"
    assert "csrf_token" not in me
    r = c.post("/api/v1/maps", json={"title": "by token"})  # no X-CSRF-Token header
    assert r.status_code == 201, r.text
    tokens = alice.get("/api/v1/tokens").json()
    assert tokens[0]["last_used_at"] is not None


def test_read_token_can_read_but_not_write(clients, alice) -> None:  # type: ignore[no-untyped-def]
    m = alice.create_map("Readable")
    c = clients()
    c.token = _token(alice, "read")["token"]
    assert c.get(f"/api/v1/maps/{m['id']}").status_code == 200
    assert c.get("/api/v1/maps?scope=mine").status_code == 200
    _error(c.post("/api/v1/maps", json={"title": "nope"}), 403, "insufficient_scope")
    _error(c.patch(f"/api/v1/maps/{m['id']}", json={"title": "nope"}), 403, "insufficient_scope")
    _error(c.delete(f"/api/v1/maps/{m['id']}"), 403, "insufficient_scope")
    assert alice.get(f"/api/v1/maps/{m['id']}").json()["title"] == "Readable"


@pytest.mark.parametrize("scope", ["read", "write"])
def test_token_cannot_create_or_revoke_tokens_beyond_its_scope(clients, alice, scope) -> None:  # type: ignore[no-untyped-def]
    c = clients()
    c.token = _token(alice, scope)["token"]
    r = c.post("/api/v1/tokens", json={"name": "child", "scope": "write"})
    _error(r, 403, "insufficient_scope" if scope == "read" else "session_required")
    assert len(alice.get("/api/v1/tokens").json()) == 1


def test_token_validation(alice) -> None:  # type: ignore[no-untyped-def]
    err = _error(alice.post("/api/v1/tokens", json={"name": "x", "scope": "admin"}), 422)
    assert err["details"]["field"] == "scope"
    err = _error(alice.post("/api/v1/tokens", json={"name": "  ", "scope": "read"}), 422)
    assert err["details"]["field"] == "name"
    _error(alice.client.post("/api/v1/tokens", json={"name": "x", "scope": "read"}), 403,
           "csrf_failed")
    assert alice.get("/api/v1/tokens").json() == []


def test_tokens_need_login(anon) -> None:  # type: ignore[no-untyped-def]
    _error(anon.get("/api/v1/tokens"), 401, "login_required")
    _error(anon.post("/api/v1/tokens", json={"name": "x", "scope": "read"}), 401, "login_required")


def test_revoked_token_is_refused(clients, alice) -> None:  # type: ignore[no-untyped-def]
    created = _token(alice, "write")
    c = clients()
    c.token = created["token"]
    assert c.get("/api/v1/auth/me").status_code == 200
    assert alice.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    _error(c.get("/api/v1/auth/me"), 401, "invalid_token")
    _error(c.get("/api/v1/maps"), 401, "invalid_token")  # a bad token is never "anonymous"
    assert alice.get("/api/v1/tokens").json() == []
    _error(alice.delete(f"/api/v1/tokens/{created['id']}"), 404)  # already revoked


def test_cannot_revoke_someone_elses_token(clients, alice, bob) -> None:  # type: ignore[no-untyped-def]
    created = _token(alice, "read")
    _error(bob.delete(f"/api/v1/tokens/{created['id']}"), 404, "not_found")
    assert bob.get("/api/v1/tokens").json() == []
    c = clients()
    c.token = created["token"]
    assert c.get("/api/v1/auth/me").status_code == 200


def test_a_token_can_revoke_only_with_write_scope(clients, alice) -> None:  # type: ignore[no-untyped-def]
    victim = _token(alice, "read", "victim")
    c = clients()
    c.token = _token(alice, "read", "reader")["token"]
    _error(c.delete(f"/api/v1/tokens/{victim['id']}"), 403, "insufficient_scope")
    assert {t["name"] for t in alice.get("/api/v1/tokens").json()} == {"victim", "reader"}


@pytest.mark.parametrize("authorization", [
    "Basic x", "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer", "Bearer ", "Token wmk_abc", "wmk_abc",
    "Bearer wmk_not-a-real-token", "Bearer not-even-prefixed",
])
def test_bad_authorization_header_is_401(anon, authorization) -> None:  # type: ignore[no-untyped-def]
    r = anon.client.get("/api/v1/maps", headers={"Authorization": authorization})
    _error(r, 401, "invalid_token")


def test_bad_authorization_header_wins_over_a_valid_session(alice) -> None:  # type: ignore[no-untyped-def]
    """A broken token is an error even with a session cookie: never silently fall back."""
    _error(alice.get("/api/v1/auth/me", headers={"Authorization": "Basic x"}), 401, "invalid_token")


def test_users_table_holds_no_plain_password(app, alice) -> None:  # type: ignore[no-untyped-def]
    with app.state.services.db.read() as s:
        row = s.scalar(select(User).where(User.email == "alice@example.com"))
    assert PASSWORD not in row.password_hash and row.password_hash.startswith("$argon2id$")


def test_anonymous_requests_create_no_session(app, anon) -> None:  # type: ignore[no-untyped-def]
    """Sessions live in a store (memory, file or Redis): a cookieless crawler must not add an
    entry per request."""
    for path in ("/api/v1/maps", "/healthz", "/api/v1/auth/me"):
        r = anon.client.get(path)
        assert COOKIE not in r.cookies, (path, r.headers.get_list("set-cookie"))
    r = anon.client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong"})
    assert r.status_code == 401 and COOKIE not in r.cookies
    assert not anon.client.cookies.get(COOKIE)
