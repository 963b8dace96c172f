"""Accounts in a real browser: "Forgot password?" through a real SMTP server (the link in the
captured mail is followed), and the administrators' account page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer, start_server
from tests.mail_server import MailSink, mail_sink  # noqa: F401 - fixture
from tests.servers import stop_process

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "purple elephants dance at noon"
LINK = re.compile(r"(https?://\S+/reset-password#token=[\w-]+)")


@pytest.fixture
def mail_server(tmp_path: Path, mail_sink: MailSink) -> Iterator[LiveServer]:  # noqa: F811
    server = start_server(tmp_path / "var", WAYMARK_SMTP_URL=mail_sink.url,
                          WAYMARK_MAIL_FROM="Waymark <maps@example.org>")
    yield server
    stop_process(server.process)


def test_forgot_password_by_mail(page: Page, mail_server: LiveServer, mail_sink: MailSink,  # noqa: F811
                                 console, screenshot) -> None:  # type: ignore[no-untyped-def]
    base = mail_server.url
    # on purpose below: a too-short password (422) and a spent link (400)
    for expected in ("422", "400", "Unprocessable Entity", "Bad Request"):
        console.allow(expected)
    r = page.request.post(f"{base}/api/v1/auth/signup", data={
        "email": "walker@example.com", "password": PASSWORD, "display_name": "Walker"})
    assert r.status == 201
    page.context.clear_cookies()

    page.goto(f"{base}/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("E-mail").fill("walker@example.com")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("a link to choose a new password is on its way")
    screenshot(page, "password-forgot-sent")

    mail = mail_sink.wait_for("walker@example.com")
    link = LINK.search(mail.get_content())
    assert link, mail.get_content()
    assert link.group(1).startswith(base + "/reset-password#token=")
    page.goto(link.group(1))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator(".form-error")).to_contain_text("at least 10 characters")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    screenshot(page, "password-reset-form")
    page.get_by_role("button", name="Set the new password").click()
    expect(page).to_have_url(re.compile(r"/login\?reset=1$"))
    expect(page.locator(".form-ok")).to_have_text("Your password was changed. Log in with the new one.")

    page.get_by_label("E-mail").fill("walker@example.com")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    # the link is spent
    page.goto(link.group(1))
    page.get_by_label("New password").fill("another long password here")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator(".form-error")).to_contain_text("invalid, already used or expired")


def _waymark(server: LiveServer, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env["WAYMARK_DATABASE_URL"] = server.env["WAYMARK_DATABASE_URL"]
    subprocess.run([str(Path(sys.executable).parent / "waymark"), *args], env=env, check=True,
                   capture_output=True, timeout=120)


def test_admin_page_disables_and_deletes(page: Page, live_server: LiveServer, console,  # type: ignore[no-untyped-def]
                                         screenshot) -> None:
    base = live_server.url
    for email, name in [("admin-e2e@example.com", "Ada"), ("gone-e2e@example.com", "Gus"),
                        ("heir-e2e@example.com", "Hal")]:
        r = page.request.post(f"{base}/api/v1/auth/signup",
                              data={"email": email, "password": PASSWORD, "display_name": name})
        assert r.status == 201
        if email.startswith("gone"):
            csrf = r.json()["csrf_token"]
            m = page.request.post(f"{base}/api/v1/maps", data={"title": "Gus's walks"},
                                  headers={"X-CSRF-Token": csrf})
            assert m.status == 201
        page.context.clear_cookies()
    _waymark(live_server, "user", "set-admin", "admin-e2e@example.com")
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill("admin-e2e@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Search by e-mail or name").fill("e2e")
    page.get_by_role("button", name="Search").click()
    row = page.locator("tr", has_text="gone-e2e@example.com")
    expect(row).to_contain_text("Active")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Disable").click()
    expect(page.locator("tr", has_text="gone-e2e@example.com")).to_contain_text("Disabled")
    screenshot(page, "admin-users")

    page.locator("tr", has_text="gone-e2e@example.com").get_by_role("button", name="Delete").click()
    dialog = page.locator("#delete-user-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("E-mail of the new owner").fill("heir-e2e@example.com")
    screenshot(page, "admin-delete-dialog")
    dialog.get_by_role("button", name="Delete account").click()
    expect(page.locator("tr", has_text="gone-e2e@example.com")).to_have_count(0)
    expect(page.locator("tr", has_text="heir-e2e@example.com")).to_contain_text("1")
