"""Plain data types shared by every reader and writer.

Kept free of any I/O or framework import so the web layer, the job queue and the
tests can all depend on them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: keys allowed inside a feature's reserved "_style" property / a layer style
STYLE_KEYS = ("color", "weight", "opacity", "fillColor", "fillOpacity", "markerColor")


@dataclass(slots=True)
class ParsedFeature:
    geometry: dict | None
    properties: dict


@dataclass(slots=True)
class ParsedLayer:
    name: str | None
    features: list[ParsedFeature] = field(default_factory=list)


@dataclass(slots=True)
class ImportResult:
    layers: list[ParsedLayer]
    warnings: list[str] = field(default_factory=list)

    @property
    def feature_count(self) -> int:
        return sum(len(layer.features) for layer in self.layers)


class FormatError(ValueError):
    """A file that cannot be imported, with where the problem is when known.

    ``line`` is a 1-based physical line in the file (CSV/XML/JSON syntax errors),
    ``index`` a 0-based position in the GeoJSON ``features`` array (message says
    "feature N" with the same number, i.e. ``features[N]``), ``field`` a column or
    attribute name. ``reason`` is the bare message without the location prefix.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.line = line
        self.index = index
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.index is not None:
            where.append(f"feature {self.index}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def with_context(
        self, *, line: int | None = None, index: int | None = None, field: str | None = None
    ) -> FormatError:
        """Copy with extra location info (existing values win)."""
        return FormatError(
            self.reason,
            line=self.line if self.line is not None else line,
            index=self.index if self.index is not None else index,
            field=self.field if self.field is not None else field,
        )

    def to_details(self) -> dict:
        details = {"line": self.line, "feature_index": self.index, "field": self.field}
        return {k: v for k, v in details.items() if v is not None}


@dataclass(slots=True)
class ExportLayer:
    name: str
    style: dict
    features: list[dict]  # each {"id": str, "geometry": dict | None, "properties": dict}


class WarningCollector:
    """Bounded warning list: the first ``limit`` messages, then one summary line."""

    __slots__ = ("limit", "messages", "extra")

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
