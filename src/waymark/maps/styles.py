"""The layer style document: what a layer looks like, validated on every write.

One schema, three uses: ``check_style`` validates a layer's ``style`` on create, update and
bundle import (422 naming the field, e.g. ``style.rule.categories[2].color``), the OpenAPI
document publishes it as JSON Schema (``style_schema_components``), and the browser draws
from it (frontend/style.js, frontend/datastyle.js). Names are Leaflet's, as the layer style
always had them (``color``, ``fillColor`` ...); a feature's own style is in its properties
under the simplestyle names (formats/simplestyle.py) and wins over the layer's.

- ``rule``: a data-driven style. ``categorized``: a property's values to colours (and
  icons), the rest in an "other" class; ``graduated``: a numeric property in classes
  (quantiles, equal intervals, natural breaks (Jenks) or given breaks) coloured from a
  ramp; ``proportional``: points as circles whose area grows with a numeric property.
  Features whose value is missing, empty or (for the numeric rules) not a number fall in
  the visible "No data" class (``noDataColor``, ``noDataLabel``). The classes are computed
  in the browser from the layer's data (frontend/classify.js), so they follow edits.
- ``display``: points ``plain``, ``cluster``ed (clusters dissolve at ``clusterMaxZoom``)
  or as a ``heatmap`` (``heatRadius``, ``heatBlur``, weighted by ``heatWeight``).
- ``label``: a text or ``{property}`` template shown next to each feature, always or on hover.
- ``popup``: the popup template (fields, order, labels).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from waymark.errors import Invalid
from waymark.maps.state import DEFAULT_STYLE

# the same test as the browser's safeColor: a hex colour or a CSS colour name
Color = Annotated[str, Meta(pattern=r"^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$",
                            description='"#rrggbb" (or #rgb, #rrggbbaa) or a CSS colour name',
                            examples=["#3388ff"])]
Opacity = Annotated[float, Meta(ge=0, le=1)]
Property = Annotated[str, Meta(min_length=1, max_length=200, description="a feature property")]
Label = Annotated[str, Meta(max_length=100)]
IconName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
                               description="an icon of the bundled Maki/Temaki set",
                               examples=["park"])]
MarkerSize = Literal["small", "medium", "large"]
#: colour ramps (frontend/ramps.js draws them; tests check both lists agree)
RAMPS = ("viridis", "cividis", "magma", "inferno", "plasma", "blues", "greens", "greys",
         "oranges", "purples", "reds", "ylgnbu", "ylorrd", "ylorbr", "bupu", "gnbu", "orrd",
         "pubugn", "rdpu", "ylgn", "rdylbu", "rdbu", "puor", "brbg", "prgn", "piyg",
         "okabeito", "tableau10", "set2", "dark2", "paired")
Ramp = Literal[RAMPS]  # type: ignore[valid-type]
NO_DATA_COLOR = "#cccccc"


class PopupField(Struct, forbid_unknown_fields=True):
    key: Annotated[str, Meta(min_length=1, max_length=100)]
    label: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.label is UNSET:
            self.label = self.key


class Popup(Struct, forbid_unknown_fields=True):
    """Which properties popups show, in what order, under which label; ``others``: then
    the remaining ones."""

    fields: Annotated[list[PopupField], Meta(max_length=300)] = []
    others: bool = False


class FeatureLabel(Struct, forbid_unknown_fields=True):
    """A label next to each feature: ``text`` with ``{property}`` placeholders."""

    text: Annotated[str, Meta(min_length=1, max_length=200)]
    show: Literal["always", "hover"] = "always"


class Category(Struct, forbid_unknown_fields=True):
    value: Annotated[str, Meta(max_length=200, description="the property's value, as text")]
    color: Color
    symbol: IconName | UnsetType = UNSET
    label: Label | UnsetType = UNSET


class Categorized(Struct, tag_field="type", tag="categorized", forbid_unknown_fields=True):
    property: Property
    categories: Annotated[list[Category], Meta(max_length=100)]
    otherColor: Color = "#9e9e9e"
    otherLabel: Label = "Other"
    noDataColor: Color = NO_DATA_COLOR
    noDataLabel: Label = "No data"


class Graduated(Struct, tag_field="type", tag="graduated", forbid_unknown_fields=True):
    property: Property
    method: Literal["quantile", "equal", "jenks", "manual"] = "quantile"
    classes: Annotated[int, Meta(ge=2, le=9)] = 5
    ramp: Ramp = "viridis"
    reverse: bool = False
    #: the inner class limits of a "manual" classification (classes - 1, ascending)
    breaks: Annotated[list[float], Meta(max_length=8)] | UnsetType = UNSET
    noDataColor: Color = NO_DATA_COLOR
    noDataLabel: Label = "No data"


class Proportional(Struct, tag_field="type", tag="proportional", forbid_unknown_fields=True):
    property: Property
    minRadius: Annotated[float, Meta(ge=1, le=50)] = 4
    maxRadius: Annotated[float, Meta(ge=2, le=100)] = 30
    color: Color | UnsetType = UNSET
    noDataColor: Color = NO_DATA_COLOR
    noDataLabel: Label = "No data"


class Display(Struct, forbid_unknown_fields=True):
    """How the points of the layer are drawn."""

    mode: Literal["plain", "cluster", "heatmap"] = "plain"
    clusterMaxZoom: Annotated[int, Meta(ge=1, le=22)] = 15
    heatRadius: Annotated[int, Meta(ge=2, le=100)] = 25
    heatBlur: Annotated[int, Meta(ge=0, le=100)] = 15
    heatWeight: Property | UnsetType = UNSET


class LayerStyle(Struct, forbid_unknown_fields=True):
    """A layer's style. Every member is optional; the browser fills in its defaults."""

    color: Color | UnsetType = UNSET
    weight: Annotated[float, Meta(ge=0, le=50)] | UnsetType = UNSET
    opacity: Opacity | UnsetType = UNSET
    fill: bool | UnsetType = UNSET
    fillColor: Color | UnsetType = UNSET
    fillOpacity: Opacity | UnsetType = UNSET
    markerColor: Color | UnsetType = UNSET
    markerSymbol: IconName | UnsetType = UNSET
    markerSize: MarkerSize | UnsetType = UNSET
    dashArray: Annotated[str, Meta(pattern=r"^[0-9., ]{1,50}$")] | UnsetType = UNSET
    label: FeatureLabel | UnsetType = UNSET
    popup: Popup | UnsetType = UNSET
    rule: Categorized | Graduated | Proportional | UnsetType = UNSET
    display: Display | UnsetType = UNSET

    def __post_init__(self) -> None:
        rule = self.rule
        if isinstance(rule, Proportional) and rule.minRadius > rule.maxRadius:
            raise ValueError("minRadius must not be larger than maxRadius - at `$.rule`")
        if isinstance(rule, Graduated) and rule.method == "manual":
            breaks = rule.breaks if rule.breaks is not UNSET else []
            if len(breaks) != rule.classes - 1 or breaks != sorted(set(breaks)):
                raise ValueError(f"a manual classification needs {rule.classes - 1} ascending "
                                 "breaks - at `$.rule.breaks`")


_AT = re.compile(r"^(.*) - at `\$(.*)`$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]*)`")


def _field(message: str) -> tuple[str, str]:
    """msgspec's "… - at `$.rule.categories[0].color`" -> (message, "style.rule…")."""
    m = _AT.match(message)
    reason, path = (m.group(1), m.group(2)) if m else (message, "")
    unknown = _UNKNOWN.match(reason)
    if unknown:
        path += "." + unknown.group(1)
    return reason, "style" + path


def check_style(style: Any) -> dict[str, Any]:
    """The style as it will be stored: absent members stay absent, the members of a rule,
    label, popup or display get their defaults written out (so checking a checked style
    changes nothing); ``None`` gives the default style."""
    if style is None:
        return dict(DEFAULT_STYLE)
    try:
        doc = msgspec.convert(style, LayerStyle)
    except msgspec.ValidationError as exc:
        reason, field = _field(str(exc))
        raise Invalid(f"{field}: {reason}", details={"field": field}) from None
    checked: dict[str, Any] = msgspec.to_builtins(doc)
    return checked


def style_schema_components() -> tuple[dict[str, Any], dict[str, Any]]:
    """(schema of LayerStyle, the component schemas it refers to) for the OpenAPI document."""
    (schema,), components = msgspec.json.schema_components(
        [LayerStyle], ref_template="#/components/schemas/{name}")
    return schema, components
