"""Helpers shared by the writers (XML-safe text, numbers, geometry parts)."""

from __future__ import annotations

import json
import re
from typing import Any

# characters XML 1.0 cannot carry at all, even escaped
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Drop characters XML 1.0 forbids (escaping of <, & and quotes is done by ElementTree)."""
    return _XML_ILLEGAL.sub("", value)


def num(v: Any) -> str:
    """Shortest text that reads back as the same float."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


def value_text(v: Any) -> tuple[str, bool]:
    """(text, is_json): strings as-is, anything else JSON-encoded."""
    if isinstance(v, str):
        return v, False
    return json.dumps(v, ensure_ascii=False, separators=(",", ":")), True


def split_geometry(geom: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flatten a GeometryCollection into its (non-collection) members."""
    if not geom:
        return []
    if geom.get("type") == "GeometryCollection":
        return [g for part in geom.get("geometries") or () for g in split_geometry(part)]
    return [geom]
