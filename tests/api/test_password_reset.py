"""Password reset by e-mail against a real SMTP server on loopback (aiosmtpd): the same
answer for any address, single-use expiring hashed links, throttling, every session ended.
(The browser journey that follows the mailed link: tests/e2e/test_password_reset.py.)"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar

from tests.conftest import _client_factory, make_settings
from tests.mail_server import MailSink, mail_sink  # noqa: F401 - fixture
from waymark.app import create_app
from waymark.db.models import PasswordReset, utcnow

NEW_PASSWORD = "a brand new long password"
LINK = re.compile(r"https?://\S+/reset-password#token=([\w-]+)")


@pytest.fixture
def mail_app(tmp_path, sqlite_url, mail_sink) -> Iterator[Litestar]:  # type: ignore[no-untyped-def]  # noqa: F811
    app = create_app(make_settings(tmp_path, sqlite_url, smtp_url=mail_sink.url,
                                   mail_from="Maps <maps@example.org>",
                                   public_url="https://maps.example.org",
                                   rate_limits="reset=6/hour,reset_address=2/hour"))
    yield app
    app.state.services.db.dispose()


@pytest.fixture
def mclients(mail_app) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    yield from _client_factory(mail_app)


def ask(client: Any, email: str) -> Any:
    return client.client.post("/api/v1/auth/password-reset", json={"email": email})


def token_of(message: Any) -> str:
    match = LINK.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


def test_reset_by_mail_ends_every_session(mail_app, mclients, mail_sink: MailSink) -> None:  # noqa: F811
    alice = mclients()
    alice.signup("alice@example.com")
    elsewhere = mclients()
    assert elsewhere.login("alice@example.com").status_code == 200
    anon = mclients()

    r = ask(anon, "Alice@Example.com ")
    assert r.status_code == 202, r.text
    mail = mail_sink.wait_for("alice@example.com")
    assert mail["From"] == "Maps <maps@example.org>" and "reset" in mail["Subject"].lower()
    assert "https://maps.example.org/reset-password#token=" in mail.get_content()
    assert "60 minutes" in mail.get_content()
    token = token_of(mail)
    with mail_app.state.services.db.read() as s:  # only the hash is stored
        rows = s.query(PasswordReset).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]

    r = anon.client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": token, "password": "short"})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "password"
    r = anon.client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    for client in (alice, elsewhere):  # every session ended
        assert client.get("/api/v1/auth/me").status_code == 401
    assert mclients().login("alice@example.com").status_code == 401  # old password gone
    assert mclients().login("alice@example.com", NEW_PASSWORD).status_code == 200
    # single use
    r = anon.client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": token, "password": "yet another long password"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_reset_token"


def test_same_answer_whether_the_account_exists_or_not(
        mail_app, mclients, mail_sink: MailSink) -> None:  # noqa: F811
    alice = mclients()
    alice.signup("alice@example.com")
    known = ask(mclients(), "alice@example.com")
    unknown = ask(mclients(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    mail_sink.wait_for("alice@example.com")
    assert mail_sink.to("nobody@example.com") == []  # the job ran inline: nothing was sent
    r = ask(mclients(), "not an address")
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "email"


def test_links_expire_and_a_reset_spends_older_links(
        mail_app, mclients, mail_sink: MailSink) -> None:  # noqa: F811
    from waymark.accounts.reset import create_reset

    mclients().signup("alice@example.com")
    db = mail_app.state.services.db
    with db.write() as s:
        _, expired = create_reset(s, "alice@example.com", 60, now=utcnow() - timedelta(minutes=61))
    anon = mclients()
    r = anon.client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": expired, "password": NEW_PASSWORD})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_reset_token"
    ask(anon, "alice@example.com")
    ask(anon, "alice@example.com")
    first, second = token_of(mail_sink.wait_for("alice@example.com", 1)), \
        token_of(mail_sink.wait_for("alice@example.com", 2))
    assert anon.client.post("/api/v1/auth/password-reset/confirm",
                            json={"token": second, "password": NEW_PASSWORD}).status_code == 204
    r = anon.client.post("/api/v1/auth/password-reset/confirm",
                         json={"token": first, "password": "yet another long password"})
    assert r.status_code == 400


def test_throttled_per_address_and_per_ip(mail_app, mclients, mail_sink: MailSink) -> None:  # noqa: F811
    mclients().signup("alice@example.com")
    mclients().signup("bob@example.com")
    anon = mclients()
    answers = [ask(anon, "alice@example.com") for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[2].json() == answers[0].json()  # over the address limit: same answer...
    assert len(mail_sink.to("alice@example.com")) == 2  # ...but no third mail
    assert ask(anon, "bob@example.com").status_code == 202  # another address still gets one
    mail_sink.wait_for("bob@example.com")
    assert ask(anon, "carol@example.com").status_code == 202
    assert ask(anon, "dave@example.com").status_code == 202
    r = ask(anon, "erin@example.com")  # the seventh request from this IP within the hour
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert r.json()["error"]["details"]["class"] == "reset"


def test_disabled_accounts_get_no_link(mail_app, mclients, mail_sink: MailSink) -> None:  # noqa: F811
    from waymark.admin.users import disable_user, find_user

    mclients().signup("alice@example.com")
    with mail_app.state.services.db.write() as s:
        disable_user(s, find_user(s, "alice@example.com"))
    assert ask(mclients(), "alice@example.com").status_code == 202
    assert mail_sink.to("alice@example.com") == []


def test_without_smtp_the_page_says_ask_an_administrator(app, anon) -> None:  # type: ignore[no-untyped-def]
    login = anon.get("/login").text
    assert 'href="/forgot-password"' in login and "Forgot password?" in login
    page = anon.get("/forgot-password").text
    assert "Ask its administrator to reset your password" in page and "<form" not in page
    r = ask(anon, "alice@example.com")
    assert r.status_code == 403 and r.json()["error"]["code"] == "mail_not_configured"


def test_smtp_url_is_checked_and_kept_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from waymark.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="WAYMARK_SMTP_URL: scheme 'http'"):
        load_settings(environ={"WAYMARK_SMTP_URL": "http://mail.example.org"})
    settings = load_settings(environ={"WAYMARK_SMTP_URL": "smtps://u:hunter2@mail.example.org"})
    assert "hunter2" not in str(settings.redacted())
