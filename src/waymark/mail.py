"""Outgoing mail through SMTP (WAYMARK_SMTP_URL): password-reset links.

URL forms: ``smtp://host:25`` (plain, e.g. a local relay), ``smtp+starttls://host:587``
(upgrade with STARTTLS, certificate verified) and ``smtps://host:465`` (TLS from the start);
``user:password@`` logs in. No SMTP URL: Waymark sends no mail and says so on the page.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
TIMEOUT_S = 30


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str
    password: str


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise ValueError("no host (e.g. smtp+starttls://user:pass@mail.example.com:587)")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError:
        raise ValueError("the port is not a number") from None
    return SmtpTarget(parts.scheme, parts.hostname, port, unquote(parts.username or ""),
                      unquote(parts.password or ""))


def send_mail(target: SmtpTarget, sender: str, to: str, subject: str, text: str) -> None:
    """Send one plain-text message through `target` (settings.smtp_target); raises
    smtplib/OSError errors for the caller to report."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> ") or None)
    message.set_content(text)
    context = ssl.create_default_context()
    if target.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=TIMEOUT_S,
                                                context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=TIMEOUT_S)
    with client:
        if target.scheme == "smtp+starttls":
            client.starttls(context=context)
        if target.username:
            client.login(target.username, target.password)
        client.send_message(message)
