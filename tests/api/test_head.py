"""HEAD is answered like GET without a body: pages, API reads and published snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.test_snapshots import NO_GZIP, _publish, _setup
from tests.conftest import ApiClient, make_settings
from waymark.settings import Settings

SAME = ("content-type", "content-length", "etag", "cache-control", "content-security-policy")


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, snapshot_delay_ms=0)


def _same_as_get(client: ApiClient, url: str, **headers: str) -> None:
    get = client.client.get(url, headers=headers)
    head = client.client.head(url, headers=headers)
    assert get.status_code == 200, get.text
    assert head.status_code == 200, (url, head.status_code, head.text)
    assert head.content == b"", url
    for name in SAME:
        assert head.headers.get(name) == get.headers.get(name), (url, name)
    if "content-encoding" not in get.headers:
        assert int(head.headers["content-length"]) == len(get.content)
    assert head.headers.get("content-encoding") == get.headers.get("content-encoding")


def test_head_on_pages_api_reads_and_snapshots(alice: ApiClient, anon: ApiClient) -> None:
    s = _setup(alice, "public")
    _, snapshot_url = _publish(alice, s)
    _same_as_get(anon, "/")  # a page
    _same_as_get(anon, f"/m/{s['map']}")  # a map page
    _same_as_get(alice, f"/api/v1/maps/{s['map']}")  # an API read, signed in
    _same_as_get(anon, s["base"] + "/features")  # an API read, anonymous
    _same_as_get(anon, snapshot_url, **NO_GZIP)  # a published snapshot (the fast path)
    _same_as_get(anon, snapshot_url, **{"Accept-Encoding": "gzip"})


def test_head_answers_what_get_would(alice: ApiClient, anon: ApiClient) -> None:
    s = _setup(alice, "private")
    for url in (f"/api/v1/maps/{s['map']}", "/no/such/page"):
        get, head = anon.client.get(url), anon.client.head(url)
        assert get.status_code == head.status_code == 404, url
        assert head.content == b""
    head = anon.client.head("/dashboard", follow_redirects=False)  # a redirect stays one
    assert head.status_code == anon.client.get("/dashboard", follow_redirects=False).status_code
