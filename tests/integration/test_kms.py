"""Envelope encryption with a cloud KMS as key provider, against a real KMS protocol server
(moto_server's KMS on loopback): objects round-trip, cannot be opened with another KMS key,
and moving to a new KMS key re-wraps everything while it stays readable."""

from __future__ import annotations

import os

import pytest

from tests.servers import TEST_REGION, scoped_env
from waymark.storage import open_store
from waymark.storage.crypto import DecryptionError, EncryptedObjectStore, key_id_of, rewrap_all
from waymark.storage.keys_provider import AwsKms, CloudKmsProvider

pytestmark = [pytest.mark.s3]


@pytest.fixture
def kms(moto_server):  # type: ignore[no-untyped-def]
    import boto3

    with scoped_env(AWS_CA_BUNDLE=None):
        yield boto3.client("kms", endpoint_url=moto_server.endpoint, region_name=TEST_REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")


def test_kms_provider_round_trip_refusal_and_key_change(kms, tmp_path):
    first = kms.create_key(Description="waymark objects")["KeyMetadata"]["KeyId"]
    other = kms.create_key(Description="someone else")["KeyMetadata"]["KeyId"]
    provider = CloudKmsProvider(AwsKms(kms), first)
    store = EncryptedObjectStore(open_store(f"file://{tmp_path / 'objects'}"), provider)
    payloads = {f"uploads/m/u{i}/f.csv": os.urandom(200) for i in range(3)}
    for key, data in payloads.items():
        store.put_sync(key, data)
    assert {key_id_of(store.base.get_sync(k)) for k in payloads} == {first}
    assert {k: store.get_sync(k) for k in payloads} == payloads

    # the wrapped data keys open only with their KMS key
    wrong = EncryptedObjectStore(store.base, CloudKmsProvider(AwsKms(kms), other))
    blob = store.base.get_sync("uploads/m/u0/f.csv")
    forged = blob.replace(first.encode(), other.encode())
    store.base.put_sync("uploads/m/forged/f.csv", forged)
    with pytest.raises(DecryptionError):
        wrong.get_sync("uploads/m/forged/f.csv")
    store.base.delete_sync("uploads/m/forged/f.csv")

    # move to a new KMS key: re-wrap, old key still known until done, everything readable
    second = kms.create_key(Description="waymark objects 2")["KeyMetadata"]["KeyId"]
    moved = CloudKmsProvider(AwsKms(kms), second, old_key_ids=(first,))
    report = rewrap_all(store, moved)
    assert (report.scanned, report.rewrapped) == (3, 3)
    assert {key_id_of(store.base.get_sync(k)) for k in payloads} == {second}
    only_new = EncryptedObjectStore(store.base, CloudKmsProvider(AwsKms(kms), second))
    assert {k: only_new.get_sync(k) for k in payloads} == payloads


def test_kms_key_chosen_by_settings_is_shared_by_nodes(kms, moto_server, tmp_path):
    """WAYMARK_KMS_KEY_ID + WAYMARK_KMS_ENDPOINT_URL: two nodes with separate data dirs read
    each other's objects, and neither writes a master key file."""
    from tests.conftest import make_settings
    from waymark.storage.crypto import open_object_store

    key_id = kms.create_key(Description="waymark nodes")["KeyMetadata"]["KeyId"]
    shared = f"file://{tmp_path / 'objects'}"
    a, b = (make_settings(tmp_path / n, "sqlite://", object_store_url=shared, kms_key_id=key_id,
                          kms_endpoint_url=moto_server.endpoint, kms_region=TEST_REGION)
            for n in "ab")
    assert a.master_key_source == "kms" and a.node_key_problem() is None
    with scoped_env(AWS_CA_BUNDLE=None):
        open_object_store(a).put_sync("uploads/m/u/f.csv", b"a,b\n1,2\n")
        assert open_object_store(b).get_sync("uploads/m/u/f.csv") == b"a,b\n1,2\n"
    assert key_id_of(open_store(shared).get_sync("uploads/m/u/f.csv")) == key_id
    assert not (tmp_path / "a" / "var" / "master.key").exists()
    assert not (tmp_path / "b" / "var" / "master.key").exists()
