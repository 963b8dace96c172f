"""Envelope encryption: objects are unreadable without their key; rotation keeps them readable."""

from __future__ import annotations

import os
import stat

import pytest

from waymark.storage import open_store
from waymark.storage.crypto import (
    MAGIC,
    DecryptionError,
    EncryptedObjectStore,
    decrypt,
    encrypt,
    key_id_of,
    plaintext_writes,
    rewrap_all,
)
from waymark.storage.keys_provider import LocalKeyFile, MasterKeyError


@pytest.fixture
def provider(tmp_path):
    return LocalKeyFile(tmp_path / "keys" / "master.key")


def test_key_file_is_created_0600(provider):
    mode = stat.S_IMODE(provider.path.stat().st_mode)
    assert mode == 0o600
    assert len(provider.key_ids()) == 1


def test_key_file_readable_by_others_is_refused(provider):
    os.chmod(provider.path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        LocalKeyFile(provider.path)


def test_missing_key_file_is_not_silently_recreated_when_create_is_false(tmp_path):
    with pytest.raises(MasterKeyError, match="does not exist"):
        LocalKeyFile(tmp_path / "nope.key", create=False)


def test_round_trip_and_header(provider):
    blob = encrypt(provider, b"secret map data")
    assert blob.startswith(MAGIC)
    assert b"secret map data" not in blob
    assert key_id_of(blob) == provider.current_key_id()
    assert decrypt(provider, blob) == b"secret map data"
    # each object has its own data key and nonce
    assert encrypt(provider, b"secret map data") != blob


def test_cannot_read_without_its_key(provider, tmp_path):
    blob = encrypt(provider, b"private features")
    other = LocalKeyFile(tmp_path / "other.key")  # a different master key
    with pytest.raises(DecryptionError):
        decrypt(other, blob)
    # the raw bytes hold no plaintext
    assert b"private" not in blob


def test_tampering_is_detected(provider):
    blob = bytearray(encrypt(provider, b"x" * 100))
    blob[-5] ^= 1
    with pytest.raises(DecryptionError):
        decrypt(provider, bytes(blob))


def test_plaintext_objects_pass_through(provider):
    assert decrypt(provider, b"\x1f\x8b plain gzip") == b"\x1f\x8b plain gzip"


def test_encrypted_store_is_transparent_and_raw_store_holds_ciphertext(provider, tmp_path):
    raw = open_store(f"file://{tmp_path / 'objects'}")
    store = EncryptedObjectStore(raw, provider)
    store.put_sync("uploads/m1/u1/a.geojson", b'{"type":"FeatureCollection"}')
    assert store.get_sync("uploads/m1/u1/a.geojson") == b'{"type":"FeatureCollection"}'
    on_disk = (tmp_path / "objects" / "uploads/m1/u1/a.geojson").read_bytes()
    assert on_disk.startswith(MAGIC) and b"FeatureCollection" not in on_disk
    assert store.put_if_absent_sync("snapshots/aa/x", b"snap") is True
    assert store.put_if_absent_sync("snapshots/aa/x", b"snap") is False
    with plaintext_writes():
        store.put_sync("snapshots/bb/public", b"public bytes")
    assert (tmp_path / "objects" / "snapshots/bb/public").read_bytes() == b"public bytes"
    assert store.get_sync("snapshots/bb/public") == b"public bytes"


async def _async_round_trip(store):
    await store.put("bundles/m1/20250101T000000Z.zip", b"bundle")
    return await store.get("bundles/m1/20250101T000000Z.zip")


def test_async_api(provider):
    import asyncio

    store = EncryptedObjectStore(open_store("memory://"), provider)
    assert asyncio.run(_async_round_trip(store)) == b"bundle"


def test_rotation_rewraps_everything_and_keeps_it_readable(provider, tmp_path):
    store = EncryptedObjectStore(open_store(f"file://{tmp_path / 'objects'}"), provider)
    payloads = {f"uploads/m1/u{i}/f.csv": os.urandom(64) for i in range(5)}
    for key, data in payloads.items():
        store.put_sync(key, data)
    with plaintext_writes():
        store.put_sync("snapshots/cc/public", b"plain")
    old = provider.current_key_id()

    # another process (`waymark keys rotate`) rotates: this provider picks the change up
    rotator = LocalKeyFile(provider.path)
    new = rotator.add_key()
    report = rewrap_all(store, rotator)
    assert (report.scanned, report.rewrapped, report.plaintext) == (6, 5, 1)
    for key, data in payloads.items():
        assert key_id_of(store.base.get_sync(key)) == new
        assert store.get_sync(key) == data  # readable during and after rotation
    # new writes use the new key without a restart
    store.put_sync("uploads/m1/new/f.csv", b"after rotation")
    assert key_id_of(store.base.get_sync("uploads/m1/new/f.csv")) == new

    rotator.retire([old])
    assert old not in LocalKeyFile(provider.path).key_ids()
    for key, data in payloads.items():
        assert store.get_sync(key) == data  # still readable with only the new key

    # a second rewrap is a no-op
    assert rewrap_all(store, rotator).rewrapped == 0


def test_current_key_cannot_be_retired(provider):
    with pytest.raises(MasterKeyError):
        provider.retire([provider.current_key_id()])
