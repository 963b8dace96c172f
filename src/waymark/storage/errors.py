"""Storage exceptions, kept apart from obstore's so callers never import obstore.

Messages are built from a short summary of the backend error with every known secret
replaced by ``***``: they are meant to be logged and shown in /readyz output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DEBUG_MARKER = "\n\nDebug source:"
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_XML_BODY = re.compile(r"<\?xml.*", re.DOTALL)
_MAX_SUMMARY = 400


class ObjectNotFound(Exception):
    """The object does not exist (``key`` says which one)."""

    def __init__(self, key: str, store_url: str = "") -> None:
        self.key = key
        self.store_url = store_url
        where = f" in {store_url}" if store_url else ""
        super().__init__(f"object {key!r} not found{where}")


class StorageError(Exception):
    """Any other failure of the object store: unreachable, denied, misconfigured."""


def summarize(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """One readable line from an obstore error, without its Rust debug dump or secrets.

    S3 error bodies are XML; only their ``<Code>`` and ``<Message>`` are kept.
    """
    text = str(exc).split(_DEBUG_MARKER, 1)[0].strip()
    code = _XML_CODE.search(text)
    message = _XML_MESSAGE.search(text)
    if code or message:
        parts = [m.group(1) for m in (code, message) if m]
        text = _XML_BODY.sub(": ".join(parts), text)
    text = " ".join(text.split())
    if not text:
        text = type(exc).__name__
    text = redact(text, secrets)
    if len(text) > _MAX_SUMMARY:
        text = text[: _MAX_SUMMARY - 3] + "..."
    return text


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
