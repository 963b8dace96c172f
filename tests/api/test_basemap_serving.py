"""The basemap archives are served with HTTP range requests: the built-in Natural Earth
archive from the bundle, and an archive in Waymark's object storage (the self-hosted planet
path), which is read piecewise and never whole."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from tests.conftest import make_settings
from waymark.app import create_app
from waymark.storage.crypto import open_object_store, raw_store
from waymark.web_assets import DIST, MANIFEST, asset_url


def _archive() -> bytes:
    return (DIST / MANIFEST.names()["basemap.pmtiles"]).read_bytes()


def test_builtin_archive_is_small_and_a_pmtiles_v3_archive() -> None:
    data = _archive()
    assert data[:7] == b"PMTiles" and data[7] == 3
    assert len(data) <= 25 * 1024 * 1024
    root_offset, root_length = struct.unpack_from("<QQ", data, 8)
    min_zoom, max_zoom = data[100], data[101]
    assert (min_zoom, max_zoom) == (0, 7)
    # the root directory is gzip-compressed and lists tiles
    assert gzip.decompress(data[root_offset:root_offset + root_length])


def test_builtin_archive_answers_range_requests(anon) -> None:  # type: ignore[no-untyped-def]
    url = asset_url("basemap.pmtiles")
    data = _archive()
    head = anon.get(url, headers={"Range": "bytes=0-126"})
    assert head.status_code == 206
    assert head.content == data[:127]
    assert head.headers["content-range"] == f"bytes 0-126/{len(data)}"
    assert head.headers["accept-ranges"] == "bytes"
    assert "immutable" in head.headers["cache-control"]
    tail = anon.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = anon.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert beyond.json()["error"]["code"] == "range_not_satisfiable"
    whole = anon.get(url)
    assert whole.status_code == 200 and len(whole.content) == len(data)


@pytest.fixture
def planet_app(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, sqlite_url, basemaps='[{"name": "planet", "type": "pmtiles", '
                             '"url": "objects:basemaps/planet.pmtiles", "attribution": "Protomaps"}]')
    raw_store(open_object_store(settings)).put_sync("basemaps/planet.pmtiles", _archive())
    app = create_app(settings)
    yield app
    app.state.services.db.dispose()


def test_object_store_archive_is_read_by_range(planet_app) -> None:  # type: ignore[no-untyped-def]
    from litestar.testing import TestClient

    data = _archive()
    with TestClient(planet_app) as client:
        part = client.get("/basemaps/planet.pmtiles", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert client.get("/basemaps/nothing.pmtiles").status_code == 404
        # the page offers it, served from this origin
        page = client.get("/")
        assert "connect-src 'self';" in page.headers["content-security-policy"]


def test_missing_object_is_a_clear_404(tmp_path: Path, sqlite_url: str) -> None:
    from litestar.testing import TestClient

    settings = make_settings(tmp_path, sqlite_url, basemaps='[{"name": "planet", "type": "pmtiles", '
                             '"url": "objects:basemaps/none.pmtiles"}]')
    app = create_app(settings)
    with TestClient(app) as client:
        r = client.get("/basemaps/planet.pmtiles", headers={"Range": "bytes=0-9"})
        assert r.status_code == 404
        assert "basemaps/none.pmtiles" in r.json()["error"]["message"]
    app.state.services.db.dispose()
