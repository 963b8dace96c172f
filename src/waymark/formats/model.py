"""Plain data types shared by every reader and writer.

Kept free of any I/O or framework import so the web layer, the job queue and the
tests can all depend on them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: attribute columns of one imported table (CSV, .dbf, GeoPackage...): bounds the memory a
#: small file of many empty columns could take, one property per column per row
MAX_COLUMNS = 1000


@dataclass(slots=True)
class ParsedFeature:
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


@dataclass(slots=True)
class ParsedLayer:
    name: str | None
    features: list[ParsedFeature] = field(default_factory=list)


@dataclass(slots=True)
class ImportResult:
    layers: list[ParsedLayer]
    warnings: list[str] = field(default_factory=list)
    #: the coordinate system the source was reprojected from ("EPSG:27700"), None if WGS84
    reprojected_from: str | None = None

    @property
    def feature_count(self) -> int:
        return sum(len(layer.features) for layer in self.layers)


class FormatError(ValueError):
    """A file that cannot be imported, with where the problem is when known.

    ``line`` is a 1-based physical line in the file (CSV/XML/JSON syntax errors),
    ``index`` a 0-based position in the GeoJSON ``features`` array or a layer
    (message says "feature N" with the same number, i.e. ``features[N]``), ``field``
    a column or attribute name, ``member`` a file inside an archive (Shapefile zip,
    KMZ), ``layer`` a layer/table of a multi-layer source (GeoPackage). ``reason``
    is the bare message without the location prefix.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        index: int | None = None,
        field: str | None = None,
        member: str | None = None,
        layer: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.index = index
        self.field = field
        self.member = member
        self.layer = layer
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.member is not None:
            where.append(f"member {self.member!r}")
        if self.layer is not None:
            where.append(f"layer {self.layer!r}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.index is not None:
            where.append(f"feature {self.index}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def with_context(
        self, *, line: int | None = None, index: int | None = None, field: str | None = None,
        member: str | None = None, layer: str | None = None,
    ) -> FormatError:
        """Copy with extra location info (existing values win)."""
        def pick(mine: Any, new: Any) -> Any:
            return mine if mine is not None else new
        return FormatError(
            self.reason, line=pick(self.line, line), index=pick(self.index, index),
            field=pick(self.field, field), member=pick(self.member, member),
            layer=pick(self.layer, layer),
        )

    def to_details(self) -> dict[str, Any]:
        details = {"line": self.line, "feature_index": self.index, "field": self.field,
                   "member": self.member, "layer": self.layer}
        return {k: v for k, v in details.items() if v is not None}


@dataclass(slots=True, frozen=True)
class ReadOptions:
    """What the person importing said about the file (API query parameters).

    ``crs``: the source's coordinate system when the file does not say it (or says it
    wrongly); ``layers``: the tables to import from a multi-layer source (GeoPackage);
    ``missing``: rows/features without coordinates are "skip"ped or "keep"t without
    geometry (with ``skip_invalid``); ``route_points``: GPX route points become per-point
    "properties" of the route or separate "points"; the rest describe a CSV file.
    """

    crs: str | None = None
    layers: tuple[str, ...] | None = None
    lat: str | None = None
    lon: str | None = None
    wkt: str | None = None
    header: bool = True
    delimiter: str | None = None
    decimal: str = "."
    missing: str = "skip"
    route_points: str = "properties"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (stored with a queued import job); ``from_dict`` reads it back."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["layers"] = list(self.layers) if self.layers else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReadOptions:
        data = dict(data or {})
        data["layers"] = tuple(data.get("layers") or ()) or None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(slots=True)
class ExportLayer:
    name: str
    style: dict[str, Any]
    features: list[dict[str, Any]]  # each {"id": str, "geometry": dict | None, "properties": dict}


class WarningCollector:
    """Bounded warning list: the first ``limit`` messages, then one summary line."""

    __slots__ = ("extra", "limit", "messages")

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self.extra = 0

    def add(self, message: str) -> None:
        if len(self.messages) < self.limit:
            self.messages.append(message)
        else:
            self.extra += 1

    def result(self) -> list[str]:
        if self.extra:
            return [*self.messages, f"... and {self.extra} more warnings"]
        return list(self.messages)
