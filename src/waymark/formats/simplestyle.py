"""Per-feature style as feature properties, named as the simplestyle spec names them.

Why: GeoJSON from geojson.io, Placemark, uMap and Mapbox tools carries its look in the
properties ``marker-color``, ``marker-size``, ``marker-symbol``, ``stroke``,
``stroke-width``, ``stroke-opacity``, ``fill`` and ``fill-opacity`` (simplestyle-spec 1.1).
Keeping a feature's own style under those names makes it survive any GeoJSON round trip;
the KML and GPX readers turn their style elements into the same properties, and the
writers turn them back. Waymark's extensions, for what the spec has no name for (the
browser draws them, other tools ignore them): ``label-text`` (a text, or a template with
``{property}`` placeholders, shown next to the feature) and ``label-show`` (``always`` or
``hover``). ``marker-symbol`` names an icon of the bundled Maki/Temaki set.

A layer's style uses Leaflet's names (``color``, ``weight``, ``fillColor`` ...); a
feature's simplestyle properties override it. Data stored before this module existed
keeps the feature style in a ``_style`` property with the layer names: it is still read
(``upgrade_legacy``) and exported under the simplestyle names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: the simplestyle-spec 1.1 style properties
SIMPLESTYLE = ("marker-color", "marker-size", "marker-symbol", "stroke", "stroke-width",
               "stroke-opacity", "fill", "fill-opacity")
#: Waymark's extensions (drawn by the browser, ignored by other tools)
EXTENSIONS = ("label-text", "label-show")
STYLE_PROPERTIES = SIMPLESTYLE + EXTENSIONS
#: the keys that are colours, widths and opacities (what KML and GPX styles can carry)
COLOR_KEYS = ("marker-color", "stroke", "fill")
MARKER_SIZES = ("small", "medium", "large")
#: layer style (Leaflet names) -> simplestyle name
FROM_LAYER = {"color": "stroke", "weight": "stroke-width", "opacity": "stroke-opacity",
              "fillColor": "fill", "fillOpacity": "fill-opacity", "markerColor": "marker-color"}
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def hex_color(value: Any) -> str | None:
    """"#rrggbb" (lower case) for "#rgb", "rrggbb" or "#RRGGBB"; None for anything else."""
    if not isinstance(value, str):
        return None
    m = _HEX.fullmatch(value.strip())
    if not m:
        return None
    h = m.group(1).lower()
    return "#" + ("".join(c * 2 for c in h) if len(h) == 3 else h)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def from_layer_style(style: Mapping[str, Any] | None) -> dict[str, Any]:
    """A layer style's plain colours and widths under the simplestyle names."""
    out: dict[str, Any] = {}
    for key, name in FROM_LAYER.items():
        value = (style or {}).get(key)
        if value is not None and not isinstance(value, bool):
            out[name] = value
    if (style or {}).get("fill") is False:
        out["fill-opacity"] = 0
    return out


def upgrade_legacy(props: Mapping[str, Any]) -> dict[str, Any]:
    """Properties with an old ``_style`` (layer names) moved to the simplestyle names; the
    feature's own simplestyle properties win over it."""
    legacy = props.get("_style")
    if "_style" not in props:
        return dict(props)
    out = {k: v for k, v in props.items() if k != "_style"}
    if isinstance(legacy, Mapping):
        for key, value in from_layer_style(legacy).items():
            out.setdefault(key, value)
    return out


def feature_style(props: Mapping[str, Any]) -> dict[str, Any]:
    """The style properties a feature carries itself (legacy ``_style`` included)."""
    own = upgrade_legacy(props)
    return {k: own[k] for k in STYLE_PROPERTIES if own.get(k) is not None}


def effective_style(layer_style: Mapping[str, Any] | None, props: Mapping[str, Any]) -> dict[str, Any]:
    """What a feature looks like, for writers that bake styles into the file (KML, GPX):
    the layer's colours and widths, overridden by the feature's own style properties."""
    return {**from_layer_style(layer_style), **feature_style(props)}


def color_opacity(value: Any) -> float | None:
    """An opacity in [0, 1], or None."""
    v = _number(value)
    return None if v is None or not 0 <= v <= 1 else v


def width(value: Any) -> float | None:
    v = _number(value)
    return None if v is None or v < 0 else v
