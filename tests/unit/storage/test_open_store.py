from __future__ import annotations

from pathlib import Path

import pytest

from waymark.storage import ObjectStore, StorageError, open_store


def test_memory_stores_are_independent() -> None:
    a, b = open_store("memory://"), open_store("memory://")
    a.put_sync("k", b"1")
    assert not b.exists_sync("k")
    assert a.url == "memory://"


def test_file_url_and_plain_path(tmp_path: Path) -> None:
    by_url = open_store(f"file://{tmp_path}/objs")
    by_path = open_store(str(tmp_path / "objs"))
    by_url.put_sync("x/y", b"1")
    assert by_path.get_sync("x/y") == b"1"
    assert by_url.url == by_path.url == (tmp_path / "objs").as_uri()


def test_relative_plain_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("var/objects")
    assert store.url == (tmp_path / "var" / "objects").as_uri()


def test_file_url_with_percent_encoding(tmp_path: Path) -> None:
    store = open_store((tmp_path / "with space").as_uri())
    store.put_sync("k", b"1")
    assert (tmp_path / "with space" / "k").read_bytes() == b"1"


@pytest.mark.parametrize(
    "url", ["", "   ", "ftp://host/x", "file://relative/x", "s3://", "s3://AKIA:Pa55w0rdXYZ@bucket"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        open_store(url)
    assert "Pa55w0rdXYZ" not in str(excinfo.value)


def test_local_and_memory_take_no_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        open_store("memory://", options={"x": "y"})
    with pytest.raises(ValueError):
        open_store(str(tmp_path), options={"x": "y"})


def test_local_store_on_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError):
        open_store(str(tmp_path / "file"))


def test_s3_url_hides_credentials() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    store = open_store(
        "s3://bucket-a/some/prefix?endpoint=http://127.0.0.1:9&region=eu-west-1"
        f"&access_key_id=AKIAEXAMPLE&secret_access_key={secret}",
        options={"session_token": "tok-tok-tok-tok"},
    )
    assert isinstance(store, ObjectStore)
    assert store.url == "s3://bucket-a/some/prefix?endpoint=http://127.0.0.1:9&region=eu-west-1"
    assert secret not in repr(store)


def test_s3_unknown_option_is_a_value_error_without_values() -> None:
    with pytest.raises(ValueError) as excinfo:
        open_store("s3://bucket-a", options={"no_such_option": "VerySecretValue123"})
    assert "no_such_option" in str(excinfo.value)
    assert "VerySecretValue123" not in str(excinfo.value)


def test_s3_bad_bool_option() -> None:
    with pytest.raises(ValueError):
        open_store("s3://bucket-a?allow_http=maybe")


def test_s3_unreachable_endpoint_is_storage_error_without_secret() -> None:
    secret = "ThisIsTheSecretKeyValue0123456789"
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    store = open_store(
        "s3://bucket-a?endpoint=http://127.0.0.1:9&region=us-east-1",
        options={"access_key_id": "AKIAEXAMPLE", "secret_access_key": secret},
    )
    with pytest.raises(StorageError) as excinfo:
        store.ping_sync()
    assert secret not in str(excinfo.value)
    assert "127.0.0.1:9" in str(excinfo.value)
