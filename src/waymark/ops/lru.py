"""A small per-process LRU for immutable, content-addressed bytes (published snapshots).

Safe to cache without invalidation: a key is the SHA-256 of its value, so it never changes.
Access control is checked before the cache is consulted, never by it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from waymark.observability.metrics import process_cache


class BytesLRU:
    def __init__(self, max_items: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
            else:
                self._data.move_to_end(key)
                self.hits += 1
        process_cache(value is not None)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge layer must not evict everything else
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return
            self._data[key] = value
            self._size += len(value)
            while len(self._data) > self.max_items or self._size > self.max_bytes:
                _, old = self._data.popitem(last=False)
                self._size -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._data)
