"""Per-table row counts and content checksums, computed the same way on any database.

`waymark db copy` and `waymark db verify` compare a SQLite and a PostgreSQL database with
them, so a value must hash the same whatever engine stored it:

- each value is put in one canonical form first (``canonical``): times as UTC ISO-8601 with
  microseconds (SQLite hands back naive UTC, PostgreSQL zone-aware times), floats as their
  exact hex form, booleans as booleans (SQLite stores 0/1), bytes as hex;
- a row is the JSON array of its values in column-name order, hashed with SHA-256;
- a table's checksum is the sum of its row hashes modulo 2**256, so it does not depend on
  the order rows come back in (text collations differ between engines) and is computed
  while streaming, in bounded memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, select

MODULUS = 2**256
BATCH_ROWS = 1000


@dataclass(frozen=True)
class TableDigest:
    table: str
    rows: int
    checksum: str  # 64 hex digits

    def matches(self, other: TableDigest) -> bool:
        return self.rows == other.rows and self.checksum == other.checksum


def canonical(value: Any) -> Any:
    """One form per value, whichever engine returned it (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"no canonical form for {type(value).__name__}")


class Digester:
    """Accumulates one table's row count and checksum, row by row."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows = 0
        self._sum = 0

    def add(self, row: Sequence[Any]) -> None:
        line = json.dumps([canonical(v) for v in row], ensure_ascii=False, separators=(",", ":"))
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(line.encode()).digest(), "big")) \
            % MODULUS
        self.rows += 1

    def result(self) -> TableDigest:
        return TableDigest(self.table, self.rows, f"{self._sum:064x}")


def column_names(table: Table) -> list[str]:
    """The columns a digest covers, in the order it hashes them (by name: column order may
    differ between engines after a migration added a column)."""
    return sorted(c.name for c in table.columns)


def stream_rows(conn: Connection, table: Table, batch_rows: int = BATCH_ROWS
                ) -> Iterable[list[Sequence[Any]]]:
    """Batches of rows (columns in ``column_names`` order), in primary-key order, read with a
    server-side cursor on PostgreSQL and a plain cursor on SQLite: memory stays bounded."""
    columns = [table.c[name] for name in column_names(table)]
    order = list(table.primary_key.columns) or columns
    result = conn.execution_options(yield_per=batch_rows).execute(
        select(*columns).order_by(*order))
    for partition in result.partitions():
        yield [tuple(row) for row in partition]


def digest_table(conn: Connection, table: Table) -> TableDigest:
    digester = Digester(table.name)
    for batch in stream_rows(conn, table):
        for row in batch:
            digester.add(row)
    return digester.result()
