"""The store contract against a real S3 protocol server (moto_server), plus S3 failures."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import MotoServer, moto_server, start_moto_server  # noqa: F401
from tests.unit.storage.test_store_contract import StoreContract, run
from waymark.storage import ObjectStore, StorageError, open_store

pytestmark = pytest.mark.s3

_counter = itertools.count()
WRONG_SECRET = "Wr0ngSecretKey/DoNotLeak+1234567890abcdef"


def fresh_bucket(server: MotoServer) -> str:
    return server.make_bucket(f"waymark-test-{next(_counter)}-{uuid.uuid4().hex[:8]}")


class TestS3StoreContract(StoreContract):
    """Same contract; each test gets a new bucket and a key prefix inside it."""

    @pytest.fixture
    def store(self, moto_server: MotoServer) -> ObjectStore:  # noqa: F811
        return open_store(moto_server.url(fresh_bucket(moto_server), "tenant/objects"))

    @pytest.fixture
    def other_store(self, tmp_path: Path) -> ObjectStore:
        return open_store(str(tmp_path / "backup"))


def test_prefix_isolates_stores_in_one_bucket(moto_server: MotoServer) -> None:  # noqa: F811
    bucket = fresh_bucket(moto_server)
    a = open_store(moto_server.url(bucket, "a"))
    b = open_store(moto_server.url(bucket, "b"))
    a.put_sync("k", b"from a")
    assert not b.exists_sync("k")
    whole = open_store(moto_server.url(bucket))
    assert [i.key for i in whole.list_sync()] == ["a/k"]
    # Written under the prefix, as seen by a plain S3 client.
    body = moto_server.boto3_client().get_object(Bucket=bucket, Key="a/k")["Body"].read()
    assert body == b"from a"


def test_content_type_is_stored(moto_server: MotoServer) -> None:  # noqa: F811
    bucket = fresh_bucket(moto_server)
    store = open_store(moto_server.url(bucket))
    run(store.put("s.geojson.gz", b"x", content_type="application/geo+json"))
    head = moto_server.boto3_client().head_object(Bucket=bucket, Key="s.geojson.gz")
    assert head["ContentType"] == "application/geo+json"


def test_copy_between_s3_stores(moto_server: MotoServer) -> None:  # noqa: F811
    src = open_store(moto_server.url(fresh_bucket(moto_server)))
    dst = open_store(moto_server.url(fresh_bucket(moto_server), "backups/2025"))
    run(src.put("bundles/m1/x.zip", b"zip", content_type="application/zip"))
    run(src.copy_to(dst, "bundles/m1/x.zip"))
    assert run(dst.get("bundles/m1/x.zip")) == b"zip"


def test_missing_bucket_is_storage_error_without_secret(
    moto_server: MotoServer,  # noqa: F811
) -> None:
    store = open_store(
        moto_server.url("no-such-bucket-here"),
        options={"access_key_id": "AKIAWRONG", "secret_access_key": WRONG_SECRET},
    )
    for call in (lambda: run(store.ping()), lambda: run(store.list()), store.ping_sync):
        with pytest.raises(StorageError) as excinfo:
            call()
        message = str(excinfo.value)
        assert "NoSuchBucket" in message
        assert WRONG_SECRET not in message
        assert WRONG_SECRET not in repr(excinfo.value.__cause__)
    for call in (
        lambda: run(store.put("k", b"x")),
        lambda: run(store.put_if_absent("k", b"x")),
        lambda: run(store.get("k")),
        lambda: run(store.delete("k")),
    ):
        with pytest.raises(StorageError) as excinfo:
            call()
        assert WRONG_SECRET not in str(excinfo.value)
    # A HEAD response has no body, so S3 cannot tell a missing bucket from a missing
    # object there: head/exists report "not found"; ping is what detects the bucket.
    assert store.exists_sync("k") is False


@pytest.fixture(scope="module")
def auth_moto_server() -> Iterator[MotoServer]:
    """A second moto that checks credentials (INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    server = start_moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        yield server
    finally:
        server.stop()


def test_wrong_credentials_are_storage_error_without_secret(
    auth_moto_server: MotoServer,
) -> None:
    store = open_store(
        auth_moto_server.url("some-bucket"),
        options={"access_key_id": "AKIAWRONGWRONGWRONG", "secret_access_key": WRONG_SECRET},
    )
    with pytest.raises(StorageError) as excinfo:
        run(store.ping())
    message = str(excinfo.value)
    assert "403" in message and "InvalidAccessKeyId" in message
    assert WRONG_SECRET not in message
    with pytest.raises(StorageError) as excinfo:
        run(store.put("k", b"x"))
    assert WRONG_SECRET not in str(excinfo.value)


def test_ping_fails_cleanly_when_server_is_stopped() -> None:
    server = start_moto_server()
    try:
        bucket = server.make_bucket("ping-bucket")
        store = open_store(
            server.url(bucket),
            options={"access_key_id": "AKIATEST", "secret_access_key": WRONG_SECRET},
        )
        run(store.ping())
        store.put_sync("k", b"v")
    finally:
        server.stop()
    assert server.process.poll() is not None
    with pytest.raises(StorageError) as excinfo:
        run(store.ping())
    assert server.endpoint.removeprefix("http://") in str(excinfo.value)
    assert WRONG_SECRET not in str(excinfo.value)
    with pytest.raises(StorageError):
        store.get_sync("k")
