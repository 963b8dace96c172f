"""One page of a layer's features as table rows (GET …/layers/{layer}/table): columns from
the properties, sorted by any column, filtered by text, paged in the database — a layer of
100,000 features is never loaded whole, each request reads one page and a count.

Sorting and filtering look inside the stored properties JSON with the database's own JSON
functions (SQLite json_extract/json_each, PostgreSQL jsonb), so the SQL stays portable in
what it means. Edits go through the ordinary feature API (versioned, If-Match).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Text, and_, cast, exists, func, not_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from waymark import jsonutil
from waymark.db.models import Feature, Layer
from waymark.errors import Invalid
from waymark.maps.search import INTERNAL

MAX_PAGE = 500
COLUMN_SAMPLE = 500  # features whose keys make the columns
MAX_COLUMNS = 40


def _internal(key: str) -> bool:
    return key.startswith("_") or key in INTERNAL


def columns(session: Session, layer: Layer) -> list[str]:
    """Property keys of the layer (from its first features), `name` first, then by use."""
    counts: Counter[str] = Counter()
    for (props,) in session.execute(select(Feature.properties).where(Feature.layer_id == layer.id)
                                    .order_by(Feature.id).limit(COLUMN_SAMPLE)):
        counts.update(k for k in (jsonutil.loads(props) or {}) if not _internal(k))
    keys = [k for k, _ in sorted(counts.items(), key=lambda kv: (kv[0] != "name", -kv[1]))]
    return keys[:MAX_COLUMNS]


def _jsonb_properties() -> ColumnElement[Any]:
    """Feature.properties as PostgreSQL's JSONB; the PostgreSQL dialect (about 4 MB per
    process) is imported here, where it is already loaded, not on SQLite."""
    from sqlalchemy.dialects.postgresql import JSONB

    return cast(Feature.properties, JSONB)


def _value(dialect: str, key: str) -> ColumnElement[Any]:
    """The property `key` of each feature, comparable (numbers as numbers)."""
    if dialect == "postgresql":
        return _jsonb_properties()[key]
    return func.json_extract(Feature.properties, "$." + jsonutil.dumps(key))


def _contains(dialect: str, text: str) -> ColumnElement[bool]:
    """Some shown property's value contains `text`, in any case (SQLite: wm_fold, a Python
    casefold registered by db/engine.py, as its own LIKE folds ASCII only)."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect == "postgresql":
        each = func.jsonb_each_text(_jsonb_properties()).table_valued("key", "value")
        return exists(select(1).select_from(each).where(
            each.c.value.ilike(like, escape="\\"), not_(each.c.key.startswith("_", autoescape=True)),
            each.c.key.not_in(INTERNAL)))
    each = func.json_each(Feature.properties).table_valued("key", "value", "type")
    return exists(select(1).select_from(each).where(
        each.c.type.in_(("text", "integer", "real")),
        func.wm_fold(cast(each.c.value, Text)).like(like.casefold(), escape="\\"),
        not_(each.c.key.startswith("_", autoescape=True)), each.c.key.not_in(INTERNAL)))


def table_page(session: Session, layer: Layer, *, offset: int = 0, limit: int = 50,
               sort: str | None = None, descending: bool = False, text: str = "") -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
    if offset < 0:
        raise Invalid("offset must be 0 or more", details={"field": "offset"})
    dialect = session.get_bind().dialect.name
    where: list[ColumnElement[bool]] = [Feature.layer_id == layer.id]
    if text.strip():
        where.append(_contains(dialect, text.strip()))
    total = session.scalar(select(func.count()).select_from(Feature).where(*where)) or 0
    query = select(Feature.uuid, Feature.version, Feature.properties, Feature.geometry,
                   Feature.minx, Feature.miny, Feature.maxx, Feature.maxy).where(and_(true(), *where))
    if sort:
        value = _value(dialect, sort)
        missing = value.is_(None)
        query = query.order_by(missing, value.desc() if descending else value.asc(), Feature.id)
    else:
        query = query.order_by(Feature.id.desc() if descending else Feature.id)
    rows = []
    for uuid, version, props, geometry, minx, miny, maxx, maxy in session.execute(
            query.offset(offset).limit(limit)):
        geom = jsonutil.loads(geometry) if geometry else None
        rows.append({"id": uuid, "version": version, "properties": jsonutil.loads(props) or {},
                     "geometry_type": geom.get("type") if isinstance(geom, dict) else None,
                     "bbox": [minx, miny, maxx, maxy] if minx is not None else None})
    return {"layer_id": layer.public_id, "layer_version": layer.version, "total": total,
            "offset": offset, "limit": limit, "sort": sort, "order": "desc" if descending else "asc",
            "columns": columns(session, layer), "rows": rows}

