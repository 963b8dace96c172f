"""Master keys for envelope encryption: who wraps and unwraps the per-object data keys.

A :class:`KeyProvider` never sees object data, only 32-byte data keys. The default is
:class:`LocalKeyFile` (a JSON file of master keys, mode 0600, created on first use);
:class:`CloudKmsProvider` is the interface for a cloud KMS (AWS KMS, GCP KMS, Vault transit):
the master key then never leaves the KMS and only wrap/unwrap calls cross the network.

Rotation adds a new master key and makes it current; old keys stay until every object has
been re-wrapped (``waymark keys rotate`` does both), so readers never see an unknown key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE = 12


class MasterKeyError(Exception):
    """A master key is missing, unreadable or insecure; the message names the fix."""


class KeyProvider(Protocol):
    def current_key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Encrypt ``data_key`` under the current master key: (key id, wrapped bytes)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes: ...

    def key_ids(self) -> list[str]: ...


def _wrap_with(master: bytes, key_id: str, data_key: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(master).encrypt(nonce, data_key, key_id.encode())


def _unwrap_with(master: bytes, key_id: str, wrapped: bytes) -> bytes:
    return AESGCM(master).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode())


class LocalKeyFile:
    """Master keys in a local JSON file: ``{"current": id, "keys": {id: base64, ...}}``.

    The file is created with mode 0600 on first use and refused when group or others can
    read it. The file is re-read when it changes on disk, so a rotation done by
    ``waymark keys rotate`` in another process is picked up without a restart.

    ``shared=True`` is a key file mounted from a secret (WAYMARK_MASTER_KEY_FILE), the same
    on every node: it is never created here, and may be group-readable (Kubernetes gives
    a secret volume to the pod's fsGroup), but never readable by others.
    """

    def __init__(self, path: Path, *, create: bool = True, shared: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._current = ""
        self._keys: dict[str, bytes] = {}
        self._create = create and not shared
        self._forbidden = stat.S_IRWXO if shared else stat.S_IRWXG | stat.S_IRWXO
        self._setting = "WAYMARK_MASTER_KEY_FILE" if shared else "WAYMARK_MASTER_KEY_PATH"
        self._load()

    # ---- KeyProvider -------------------------------------------------------------
    def current_key_id(self) -> str:
        self._refresh()
        return self._current

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        self._refresh()
        key_id = self._current
        return key_id, _wrap_with(self._keys[key_id], key_id, data_key)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        master = self._keys.get(key_id)
        if master is None:
            self._refresh(force=True)
            master = self._keys.get(key_id)
        if master is None:
            raise MasterKeyError(f"master key {key_id!r} is not in {self.path}: restore it from the "
                            "key backup (see docs/operations/backup.md)")
        return _unwrap_with(master, key_id, wrapped)

    def key_ids(self) -> list[str]:
        self._refresh()
        return sorted(self._keys)

    # ---- management ----------------------------------------------------------------
    def add_key(self) -> str:
        """Create a new master key and make it current; returns its id."""
        with self._lock:
            data = self._read() if self.path.exists() else {"keys": {}}
            key_id = _new_key_id()
            data["keys"][key_id] = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
            data["current"] = key_id
            self._write(data)
        self._refresh(force=True)
        return key_id

    def retire(self, key_ids: list[str]) -> None:
        """Remove master keys (never the current one)."""
        with self._lock:
            data = self._read()
            for key_id in key_ids:
                if key_id == data["current"]:
                    raise MasterKeyError(f"{key_id} is the current key and cannot be retired")
                data["keys"].pop(key_id, None)
            self._write(data)
        self._refresh(force=True)

    # ---- internals -------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            if not self._create:
                raise MasterKeyError(f"master key file {self.path} does not exist: restore it from "
                                f"the key backup, or set {self._setting}")
            self.add_key()
            return
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise MasterKeyError(f"master key file {self.path} disappeared") from None
        if not force and st.st_mtime == self._mtime:
            return
        if st.st_mode & self._forbidden:
            who = "others" if self._forbidden == stat.S_IRWXO else "group or others"
            raise MasterKeyError(f"master key file {self.path} is readable by {who} "
                            f"(mode {oct(st.st_mode & 0o777)}): run `chmod 600 {self.path}`")
        data = self._read()
        keys = {k: base64.b64decode(v) for k, v in data["keys"].items()}
        if data.get("current") not in keys or any(len(v) != KEY_BYTES for v in keys.values()):
            raise MasterKeyError(f"master key file {self.path} is malformed")
        self._keys, self._current, self._mtime = keys, data["current"], st.st_mtime

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise MasterKeyError(f"cannot read master key file {self.path}: {exc}") from None

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


class KmsClient(Protocol):
    def encrypt(self, key_id: str, plaintext: bytes) -> bytes: ...

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes: ...


class CloudKmsProvider:
    """A cloud KMS as key provider. ``client`` is a :class:`KmsClient`: :class:`AwsKms`
    here, or an equally thin adapter over google-cloud-kms or Vault transit. The key id
    stored with each object is the KMS key id (or ARN/alias). Rotation *inside* the KMS
    (AWS automatic key rotation) needs nothing from Waymark; moving to another KMS key is
    ``CloudKmsProvider(client, new_key, old_key_ids=(old_key,))`` plus
    :func:`waymark.storage.crypto.rewrap_all`, as ``waymark keys rotate`` does for key files.
    """

    def __init__(self, client: Any, key_id: str, old_key_ids: tuple[str, ...] = ()) -> None:
        self.client = client
        self._current = key_id
        self._all = [key_id, *old_key_ids]

    def current_key_id(self) -> str:
        return self._current

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        return self._current, bytes(self.client.encrypt(self._current, data_key))

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        return bytes(self.client.decrypt(key_id, wrapped))

    def key_ids(self) -> list[str]:
        return list(self._all)


class AwsKms:
    """:class:`KmsClient` over a boto3 ``kms`` client (boto3 is not a Waymark dependency:
    install it where AWS KMS is used). The encryption context binds each wrapped data key
    to Waymark, so a ciphertext from elsewhere in the account is refused."""

    CONTEXT: ClassVar[dict[str, str]] = {"purpose": "waymark-object-data-key"}

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, endpoint_url: str = "", region: str = "") -> AwsKms:
        """A client from the usual AWS credential chain (environment, profile, role)."""
        try:
            import boto3
        except ImportError:
            raise MasterKeyError("WAYMARK_KMS_KEY_ID needs boto3: pip install 'waymark[kms]' "
                                 "(the container image has it)") from None
        return cls(boto3.client("kms", endpoint_url=endpoint_url or None,
                                region_name=region or None))

    def encrypt(self, key_id: str, plaintext: bytes) -> bytes:
        return self.client.encrypt(KeyId=key_id, Plaintext=plaintext,
                                   EncryptionContext=self.CONTEXT)["CiphertextBlob"]

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        return self.client.decrypt(KeyId=key_id, CiphertextBlob=ciphertext,
                                   EncryptionContext=self.CONTEXT)["Plaintext"]


def _new_key_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"mk-{stamp}-{secrets.token_hex(3)}"


__all__ = ["AwsKms", "CloudKmsProvider", "KeyProvider", "KmsClient", "LocalKeyFile",
           "MasterKeyError"]
