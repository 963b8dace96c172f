"""Envelope encryption at rest for object storage.

Every object gets its own random AES-256-GCM data key; the data key is wrapped by a master
key from a :mod:`key provider <waymark.storage.keys_provider>` and stored in a small header
in front of the ciphertext::

    b"WMKENC1\\n" | u8 len | key id | u16 len | wrapped data key | 12-byte nonce | ciphertext+tag

:class:`EncryptedObjectStore` has the same interface as :class:`ObjectStore`: callers write
and read plaintext. Reads decrypt any object that carries the header and return other
objects unchanged (public snapshots, objects written before encryption was enabled).
Public-map snapshots are written in plaintext inside :func:`plaintext_writes`.
"""

from __future__ import annotations

import contextvars
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import StorageError
from .keys_provider import AwsKms, CloudKmsProvider, KeyProvider, LocalKeyFile
from .store import ObjectStore

MAGIC = b"WMKENC1\n"
_NONCE = 12
_PLAINTEXT: contextvars.ContextVar[bool] = contextvars.ContextVar("waymark_plaintext", default=False)


class DecryptionError(StorageError):
    """An encrypted object could not be decrypted (wrong or missing key, or tampering)."""


@dataclass(frozen=True)
class Envelope:
    key_id: str
    wrapped: bytes
    nonce: bytes
    ciphertext: bytes

    def header(self) -> bytes:
        kid = self.key_id.encode()
        return (MAGIC + struct.pack(">B", len(kid)) + kid + struct.pack(">H", len(self.wrapped))
                + self.wrapped + self.nonce)

    def to_bytes(self) -> bytes:
        return self.header() + self.ciphertext


def is_encrypted(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


def parse(blob: bytes) -> Envelope:
    try:
        pos = len(MAGIC)
        (klen,) = struct.unpack_from(">B", blob, pos)
        pos += 1
        key_id = blob[pos:pos + klen].decode()
        pos += klen
        (wlen,) = struct.unpack_from(">H", blob, pos)
        pos += 2
        wrapped = blob[pos:pos + wlen]
        pos += wlen
        nonce = blob[pos:pos + _NONCE]
        pos += _NONCE
    except (struct.error, UnicodeDecodeError):
        raise DecryptionError("malformed encryption header") from None
    if len(nonce) != _NONCE:
        raise DecryptionError("malformed encryption header")
    return Envelope(key_id, wrapped, nonce, blob[pos:])


def encrypt(provider: KeyProvider, data: bytes) -> bytes:
    data_key = AESGCM.generate_key(bit_length=256)
    key_id, wrapped = provider.wrap(data_key)
    nonce = os.urandom(_NONCE)
    return Envelope(key_id, wrapped, nonce, AESGCM(data_key).encrypt(nonce, data, MAGIC)).to_bytes()


def decrypt(provider: KeyProvider, blob: bytes) -> bytes:
    """Plaintext of ``blob``; objects without the header are returned as they are."""
    if not is_encrypted(blob):
        return blob
    env = parse(blob)
    try:
        data_key = provider.unwrap(env.key_id, env.wrapped)
        return AESGCM(data_key).decrypt(env.nonce, env.ciphertext, MAGIC)
    except InvalidTag:
        raise DecryptionError(f"cannot decrypt object (key {env.key_id}): wrong key or "
                              "tampered data") from None
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - provider errors (missing key, KMS denied)
        raise DecryptionError(str(exc)) from None


def rewrap(provider: KeyProvider, blob: bytes) -> bytes | None:
    """The same object with its data key wrapped by the current master key; None if the
    object is not encrypted or already uses it. The ciphertext itself is unchanged."""
    if not is_encrypted(blob):
        return None
    env = parse(blob)
    if env.key_id == provider.current_key_id():
        return None
    data_key = provider.unwrap(env.key_id, env.wrapped)
    key_id, wrapped = provider.wrap(data_key)
    return Envelope(key_id, wrapped, env.nonce, env.ciphertext).to_bytes()


def key_id_of(blob: bytes) -> str | None:
    return parse(blob).key_id if is_encrypted(blob) else None


@contextmanager
def plaintext_writes() -> Iterator[None]:
    """Writes inside this block are stored unencrypted (public-map snapshots)."""
    token = _PLAINTEXT.set(True)
    try:
        yield
    finally:
        _PLAINTEXT.reset(token)


class EncryptedObjectStore(ObjectStore):
    """An ObjectStore that encrypts on write and decrypts on read, transparently."""

    def __init__(self, base: ObjectStore, provider: KeyProvider) -> None:
        super().__init__(base._inner, base.url, secrets=base._secrets,
                         local_root=base._local_root)
        self._supports_attributes = base._supports_attributes
        self.base = base  # raw access: object backups copy ciphertext as it is
        self.provider = provider

    def __repr__(self) -> str:
        return f"EncryptedObjectStore({self.url!r})"

    def _seal(self, data: bytes) -> bytes:
        return data if _PLAINTEXT.get() else encrypt(self.provider, bytes(data))

    def _open(self, key: str, blob: bytes) -> bytes:
        try:
            return decrypt(self.provider, blob)
        except DecryptionError as exc:
            raise DecryptionError(f"get {key!r} on {self.url}: {exc}") from None

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        await super().put(key, self._seal(data), content_type=content_type)

    async def put_if_absent(self, key: str, data: bytes, *, content_type: str | None = None) -> bool:
        return await super().put_if_absent(key, self._seal(data), content_type=content_type)

    async def get(self, key: str) -> bytes:
        return self._open(key, await super().get(key))

    def put_sync(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        super().put_sync(key, self._seal(data), content_type=content_type)

    def put_if_absent_sync(self, key: str, data: bytes, *, content_type: str | None = None) -> bool:
        return super().put_if_absent_sync(key, self._seal(data), content_type=content_type)

    def get_sync(self, key: str) -> bytes:
        return self._open(key, super().get_sync(key))


def raw_store(store: ObjectStore) -> ObjectStore:
    """The store without its encryption layer (bytes exactly as stored)."""
    return store.base if isinstance(store, EncryptedObjectStore) else store


def key_provider(settings) -> KeyProvider:  # type: ignore[no-untyped-def]
    """The master key source the settings choose: a KMS key, a shared key file mounted from
    a secret, or this node's own key file (created on first use)."""
    if settings.kms_key_id:
        return CloudKmsProvider(AwsKms.connect(settings.kms_endpoint_url, settings.kms_region),
                                settings.kms_key_id)
    if settings.master_key_file:
        return LocalKeyFile(Path(settings.master_key_file), shared=True)
    return LocalKeyFile(settings.resolved_master_key_path)


def open_object_store(settings, url: str | None = None) -> ObjectStore:  # type: ignore[no-untyped-def]
    """The application's object store (or another store at ``url``), encrypted when
    WAYMARK_ENCRYPT_OBJECTS is on."""
    from .url import open_store

    store = open_store(url or settings.resolved_object_store_url)
    if not settings.encrypt_objects:
        return store
    return EncryptedObjectStore(store, key_provider(settings))


@dataclass
class RewrapReport:
    scanned: int = 0
    rewrapped: int = 0
    plaintext: int = 0


def rewrap_all(store: ObjectStore, provider: KeyProvider, prefix: str = "") -> RewrapReport:
    """Re-wrap every encrypted object under the current master key (online: objects stay
    readable throughout because old keys are kept until this finishes)."""
    raw = raw_store(store)
    report = RewrapReport()
    for info in raw.list_sync(prefix):
        report.scanned += 1
        blob = raw.get_sync(info.key)
        if not is_encrypted(blob):
            report.plaintext += 1
            continue
        new = rewrap(provider, blob)
        if new is not None:
            raw.put_sync(info.key, new)
            report.rewrapped += 1
    return report


__all__ = ["DecryptionError", "EncryptedObjectStore", "decrypt", "encrypt", "is_encrypted",
           "key_id_of", "open_object_store", "plaintext_writes", "raw_store", "rewrap",
           "rewrap_all"]
