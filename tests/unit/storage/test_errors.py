from __future__ import annotations

from waymark.storage import ObjectNotFound, StorageError
from waymark.storage.errors import redact, summarize

S3_403 = (
    "Generic S3 error: Error performing GET http://127.0.0.1:1/b?list-type=2 in 3ms - Server "
    'returned non-2xx status code: 403 Forbidden: <?xml version="1.0" encoding="utf-8"?>\n'
    "<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does "
    "not exist in our records.</Message><RequestId>r</RequestId></Error>\n\nDebug source:\n"
    'Generic {\n    store: "S3",\n    secret: "SuperSecretValue99"\n}'
)


def test_summarize_keeps_code_and_message_drops_debug_dump() -> None:
    text = summarize(Exception(S3_403), ["SuperSecretValue99"])
    assert text.endswith(
        "403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id you provided does not "
        "exist in our records."
    )
    assert "Debug source" not in text and "<Error>" not in text and "\n" not in text


def test_summarize_redacts_and_truncates() -> None:
    text = summarize(Exception("boom SuperSecretValue99 " + "x" * 1000), ["SuperSecretValue99"])
    assert "SuperSecretValue99" not in text and "***" in text
    assert len(text) <= 400
    assert summarize(Exception("")) == "Exception"


def test_redact_ignores_empty_secrets() -> None:
    assert redact("abc", ["", "b"]) == "a***c"


def test_exceptions_are_distinct() -> None:
    err = ObjectNotFound("a/b", "memory://")
    assert err.key == "a/b" and "a/b" in str(err) and "memory://" in str(err)
    assert not isinstance(err, StorageError)
