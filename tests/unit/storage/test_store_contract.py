"""The behaviour every ObjectStore backend must have.

``StoreContract`` is reused by tests/integration/storage/test_s3_store.py: a subclass only
provides a ``store`` fixture (an empty store) and an ``other_store`` fixture.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from waymark.storage import ObjectInfo, ObjectNotFound, ObjectStore, StorageError, open_store

T = TypeVar("T")

BAD_KEYS = [
    "",
    "/leading",
    "a//b",
    "trailing/",
    "..",
    "a/../b",
    "a/./b",
    "back\\slash",
    "nul\x00char",
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion (pytest-asyncio is not a dependency)."""
    return asyncio.run(coro)


class StoreContract:
    """Subclasses provide ``store`` and ``other_store`` fixtures returning empty stores."""

    def test_put_get_roundtrip_and_overwrite(self, store: ObjectStore) -> None:
        run(store.put("maps/m1/a.txt", b"first", content_type="text/plain"))
        assert run(store.get("maps/m1/a.txt")) == b"first"
        run(store.put("maps/m1/a.txt", b"second"))
        assert run(store.get("maps/m1/a.txt")) == b"second"

    def test_empty_object(self, store: ObjectStore) -> None:
        run(store.put("empty", b""))
        assert run(store.get("empty")) == b""
        assert run(store.head("empty")).size == 0

    def test_head(self, store: ObjectStore) -> None:
        run(store.put("h/obj.bin", b"12345"))
        info = run(store.head("h/obj.bin"))
        assert isinstance(info, ObjectInfo)
        assert info.key == "h/obj.bin"
        assert info.size == 5
        assert info.etag
        assert info.last_modified is not None and info.last_modified.tzinfo is not None

    def test_missing_object(self, store: ObjectStore) -> None:
        with pytest.raises(ObjectNotFound) as excinfo:
            run(store.get("nope/missing.txt"))
        assert excinfo.value.key == "nope/missing.txt"
        with pytest.raises(ObjectNotFound):
            run(store.head("nope/missing.txt"))
        with pytest.raises(ObjectNotFound):
            store.get_sync("nope/missing.txt")

    def test_exists(self, store: ObjectStore) -> None:
        assert run(store.exists("e/x")) is False
        run(store.put("e/x", b"1"))
        assert run(store.exists("e/x")) is True
        # A "directory" is not an object.
        assert run(store.exists("e")) is False

    def test_delete_is_idempotent(self, store: ObjectStore) -> None:
        run(store.put("d/x", b"1"))
        run(store.delete("d/x"))
        assert run(store.exists("d/x")) is False
        run(store.delete("d/x"))
        run(store.delete("never/existed"))
        store.delete_sync("never/existed")

    def test_list(self, store: ObjectStore) -> None:
        assert run(store.list()) == []
        for key in ["b/2", "a/1", "a/sub/3", "ab/4", "top"]:
            run(store.put(key, key.encode()))
        assert [i.key for i in run(store.list())] == ["a/1", "a/sub/3", "ab/4", "b/2", "top"]
        # Prefixes match whole segments: "a" does not include "ab/4".
        assert [i.key for i in run(store.list("a"))] == ["a/1", "a/sub/3"]
        assert [i.key for i in run(store.list("a/"))] == ["a/1", "a/sub/3"]
        assert [i.key for i in run(store.list("a/sub"))] == ["a/sub/3"]
        assert run(store.list("zzz")) == []
        sizes = {i.key: i.size for i in run(store.list())}
        assert sizes["a/sub/3"] == len(b"a/sub/3")

    def test_put_if_absent(self, store: ObjectStore) -> None:
        key = "snapshots/ab/abcdef.geojson.gz"
        assert run(store.put_if_absent(key, b"original", content_type="application/gzip")) is True
        assert run(store.put_if_absent(key, b"changed")) is False
        assert run(store.get(key)) == b"original"
        assert store.put_if_absent_sync(key, b"changed again") is False
        assert store.put_if_absent_sync("other/key", b"x") is True
        assert run(store.get(key)) == b"original"

    def test_copy_to(self, store: ObjectStore, other_store: ObjectStore) -> None:
        data = os.urandom(70_000)
        run(store.put("bundles/m1/1.zip", data, content_type="application/zip"))
        run(store.copy_to(other_store, "bundles/m1/1.zip"))
        assert run(other_store.get("bundles/m1/1.zip")) == data
        # ...and back the other way, overwriting.
        run(other_store.put("bundles/m1/1.zip", b"newer"))
        run(other_store.copy_to(store, "bundles/m1/1.zip"))
        assert run(store.get("bundles/m1/1.zip")) == b"newer"
        with pytest.raises(ObjectNotFound):
            run(store.copy_to(other_store, "bundles/m1/missing.zip"))

    def test_ping(self, store: ObjectStore) -> None:
        run(store.ping())
        store.ping_sync()

    @pytest.mark.parametrize("bad_key", BAD_KEYS)
    def test_key_validation(self, store: ObjectStore, bad_key: str) -> None:
        for call in (
            lambda: run(store.put(bad_key, b"x")),
            lambda: run(store.put_if_absent(bad_key, b"x")),
            lambda: run(store.get(bad_key)),
            lambda: run(store.head(bad_key)),
            lambda: run(store.exists(bad_key)),
            lambda: run(store.delete(bad_key)),
            lambda: store.put_sync(bad_key, b"x"),
            lambda: store.get_sync(bad_key),
        ):
            with pytest.raises(ValueError):
                call()
        if bad_key not in ("", "trailing/"):  # "" lists everything; one trailing "/" is fine
            with pytest.raises(ValueError):
                run(store.list(bad_key))
        assert run(store.list()) == []

    def test_unicode_keys(self, store: ObjectStore) -> None:
        key = "karten/Zürich/日本 地図 (1).geojson"
        run(store.put(key, "ü".encode()))
        assert run(store.get(key)) == "ü".encode()
        assert run(store.exists(key))
        assert [i.key for i in run(store.list("karten"))] == [key]
        assert run(store.head(key)).key == key
        run(store.delete(key))
        assert not run(store.exists(key))

    def test_large_object(self, store: ObjectStore) -> None:
        data = os.urandom(5 * 1024 * 1024 + 123)  # just over obstore's multipart chunk size
        run(store.put("big/blob.bin", data))
        assert run(store.head("big/blob.bin")).size == len(data)
        assert run(store.get("big/blob.bin")) == data

    def test_sync_api(self, store: ObjectStore) -> None:
        store.put_sync("s/1", b"one", content_type="text/plain")
        store.put_sync("s/2", b"two")
        assert store.get_sync("s/1") == b"one"
        assert store.exists_sync("s/1") and not store.exists_sync("s/3")
        assert store.head_sync("s/2").size == 3
        assert [i.key for i in store.list_sync("s")] == ["s/1", "s/2"]
        store.delete_sync("s/1")
        assert [i.key for i in store.list_sync()] == ["s/2"]

    def test_concurrent_puts(self, store: ObjectStore) -> None:
        async def many() -> None:
            await asyncio.gather(*(store.put(f"c/{i}", str(i).encode()) for i in range(20)))

        run(many())
        assert len(run(store.list("c"))) == 20

    def test_url_is_printable(self, store: ObjectStore) -> None:
        assert store.url in repr(store)


class TestStoreContract(StoreContract):
    """The contract on the embedded backends: memory and a local directory."""

    @pytest.fixture(params=["memory", "local"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
        if request.param == "memory":
            return open_store("memory://")
        return open_store(f"file://{tmp_path / 'objects'}")

    @pytest.fixture
    def other_store(self, tmp_path: Path) -> ObjectStore:
        return open_store(str(tmp_path / "other"))


# ---- local-directory specifics ---------------------------------------------------------------
def test_local_store_creates_directory_and_subdirs(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet" / "there"
    store = open_store(str(root))
    assert root.is_dir()
    assert store.url == root.as_uri()
    store.put_sync("uploads/m1/u1/file.csv", b"a,b")
    assert (root / "uploads" / "m1" / "u1" / "file.csv").read_bytes() == b"a,b"


def test_local_store_keys_cannot_escape_root(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "root"))
    with pytest.raises(ValueError):
        store.put_sync("../escaped", b"x")
    with pytest.raises(ValueError):
        store.put_sync("/etc/escaped", b"x")
    assert not (tmp_path / "escaped").exists()


def test_local_ping_fails_when_directory_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "gone"
    store = open_store(str(root))
    root.rmdir()
    with pytest.raises(StorageError, match="ping failed"):
        run(store.ping())
