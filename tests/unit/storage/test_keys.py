from __future__ import annotations

import hashlib

import pytest

from waymark.storage import bundle_key, snapshot_key, upload_key, validate_key
from waymark.storage.keys import safe_filename


def test_snapshot_key_is_content_addressed_with_fanout() -> None:
    sha = hashlib.sha256(b"layer").hexdigest()
    assert snapshot_key(sha) == f"snapshots/{sha[:2]}/{sha}.geojson.gz"
    assert snapshot_key(sha.upper()) == snapshot_key(sha)
    validate_key(snapshot_key(sha))


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "a" * 63, "../" + "a" * 61])
def test_snapshot_key_rejects_non_digests(bad: str) -> None:
    with pytest.raises(ValueError):
        snapshot_key(bad)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("route.gpx", "route.gpx"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\My Map.kml", "My_Map.kml"),
        ("Zürich Ausflug (2).geojson", "Zurich_Ausflug_2_.geojson"),
        ("地図.csv", "csv"),
        ("...", "file"),
        ("", "file"),
        ("a\x00b.csv", "a_b.csv"),
    ],
)
def test_safe_filename(filename: str, expected: str) -> None:
    assert safe_filename(filename) == expected


def test_safe_filename_truncates_but_keeps_extension() -> None:
    name = safe_filename("x" * 300 + ".geojson")
    assert len(name) == 100 and name.endswith(".geojson")


def test_upload_key() -> None:
    assert upload_key("m-Abc_1", "u42", "../My Data.csv") == "uploads/m-Abc_1/u42/My_Data.csv"
    validate_key(upload_key("m1", "u1", "/"))
    with pytest.raises(ValueError):
        upload_key("../m", "u1", "a.csv")
    with pytest.raises(ValueError):
        upload_key("m1", "u/1", "a.csv")


def test_bundle_key() -> None:
    assert bundle_key("m1", "20250101T120000Z") == "bundles/m1/20250101T120000Z.zip"
    for bad in ["", "..", "a/b", "x y"]:
        with pytest.raises(ValueError):
            bundle_key("m1", bad)
