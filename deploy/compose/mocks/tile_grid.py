"""Generated 256x256 PNG tiles for the raster tile stand-ins (mockservices.py, and the
loopback tile server of the tests): a light grid with its z/x/y written on it, so a
screenshot shows which tile is where. Standard library only."""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

SIZE = 256
# palette: 0 background, 1 alternate background, 2 minor grid, 3 major grid, 4 text
PALETTE = bytes([0xF2, 0xEF, 0xE9, 0xEA, 0xEE, 0xE6, 0xDC, 0xD8, 0xCF, 0xB9, 0xC3, 0xCF,
                 0x8A, 0x93, 0xA0])
GLYPHS = {  # 3x5 bitmaps, one string of 15 cells per character
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "/": "001001010100100",
}
SCALE = 3


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(rows: list[bytearray]) -> bytes:
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 3, 0, 0, 0)  # 8-bit palette
    raw = b"".join(b"\x00" + bytes(row) for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", PALETTE)
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def _text(rows: list[bytearray], text: str, left: int, top: int) -> None:
    x = left
    for char in text:
        glyph = GLYPHS.get(char)
        if glyph:
            for i, cell in enumerate(glyph):
                if cell == "1":
                    gx, gy = x + (i % 3) * SCALE, top + (i // 3) * SCALE
                    for dy in range(SCALE):
                        rows[gy + dy][gx:gx + SCALE] = bytes([4]) * SCALE
        x += 4 * SCALE


@lru_cache(maxsize=2048)
def render_tile(z: int, x: int, y: int) -> bytes:
    """The PNG for tile z/x/y (cached: a tile never changes)."""
    base = 1 if (x + y) % 2 else 0
    rows = [bytearray([base]) * SIZE for _ in range(SIZE)]
    for r in range(0, SIZE, 32):  # minor grid
        rows[r][:] = bytes([2]) * SIZE
        for row in rows:
            row[r] = 2
    for row in rows:  # tile border
        row[0] = 3
    rows[0][:] = bytes([3]) * SIZE
    label = f"{z}/{x}/{y}"
    width = len(label) * 4 * SCALE - SCALE
    _text(rows, label, max(4, (SIZE - width) // 2), SIZE // 2 - 5 * SCALE // 2)
    return _png(rows)
