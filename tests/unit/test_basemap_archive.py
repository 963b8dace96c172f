"""What the built-in basemap archive holds, read with the reference PMTiles reader (`pmtiles`)
and decoded with `mapbox-vector-tile`: lakes as water over the land, first-level borders and
named first-level areas, rivers with their names. The archive is the one `npm run build`
put in the bundle (frontend/basemap/build.mjs)."""

from __future__ import annotations

import gzip
import math
from collections import defaultdict
from functools import cache

import mapbox_vector_tile
from pmtiles.reader import MemorySource, Reader, all_tiles
from shapely.geometry import Point, shape

from waymark.web_assets import DIST, MANIFEST

EXTENT = 4096


@cache
def _archive() -> bytes:
    return (DIST / MANIFEST.names()["basemap.pmtiles"]).read_bytes()


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(gzip.decompress(data), default_options={"y_coord_down": True})


def _tile_at(z: int, lon: float, lat: float) -> tuple[dict, Point]:
    """The decoded tile of zoom z holding (lon, lat), and that place in tile coordinates."""
    n = 2**z
    x = (lon + 180) / 360 * n
    sin = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * n
    data = Reader(MemorySource(_archive())).get(z, int(x), int(y))
    assert data, f"no tile {z}/{int(x)}/{int(y)}"
    return _decode(data), Point((x - int(x)) * EXTENT, (y - int(y)) * EXTENT)


def _covers(tile: dict, layer: str, point: Point) -> bool:
    return any(shape(f["geometry"]).buffer(0).contains(point) for f in tile.get(layer, {}).get("features", []))


def _features(z: int, layer: str) -> list[dict]:
    """Every feature of a layer in the tiles of zoom z."""
    out = []
    for (tz, _x, _y), data in all_tiles(MemorySource(_archive())):
        if tz == z:
            out.extend(_decode(data).get(layer, {}).get("features", []))
    return out


def test_archive_declares_its_layers() -> None:
    layers = [layer["id"] for layer in Reader(MemorySource(_archive())).metadata()["vector_layers"]]
    assert layers == ["earth", "lakes", "boundaries", "region_boundaries", "rivers", "countries",
                      "regions", "places"]


LAKES = {  # a point well inside each, (lon, lat)
    "Lake Superior": (-87.5, 47.7),
    "Lake Michigan": (-87.0, 43.8),
    "Lake Victoria": (33.0, -1.0),
    "Lake Ladoga": (31.5, 61.0),
    "Great Bear Lake": (-121.0, 66.0),
}


def test_major_lakes_are_water_drawn_over_the_land() -> None:
    for z in (1, 3, 5, 7):  # Natural Earth 1:110m lakes at z0-2, 1:50m from z3
        for name, (lon, lat) in LAKES.items():
            tile, point = _tile_at(z, lon, lat)
            assert _covers(tile, "lakes", point), f"{name} is not a lake at zoom {z}"
            assert _covers(tile, "earth", point), f"{name} is not inside the land at zoom {z}"
    # and the land beside a lake is not one
    tile, point = _tile_at(5, -89.5, 45.0)  # Wisconsin
    assert _covers(tile, "earth", point) and not _covers(tile, "lakes", point)


FIRST_LEVEL_BORDERS = {  # a point on a first-level border inside each country, (lon, lat): first zoom
    "USA (Kansas/Missouri)": ((-94.6, 38.5), 2),
    "India (Madhya Pradesh/Maharashtra)": ((77.5, 21.5), 2),
    "China (Sichuan/Qinghai)": ((100.0, 33.0), 2),
    "France (Allier/Puy-de-Dôme)": ((3.0, 46.0), 4),  # départements: smaller areas, later
    "Nigeria (Kano/Jigawa)": ((9.0, 12.3), 4),
}


def _nearest_region_border(z: int, lon: float, lat: float) -> float:
    """Distance (tile units) from the point to the nearest first-level border of its tile."""
    tile, point = _tile_at(z, lon, lat)
    lines = [shape(f["geometry"]) for f in tile.get("region_boundaries", {}).get("features", [])]
    return min((line.distance(point) for line in lines), default=float("inf"))


def test_first_level_borders_world_wide_from_zoom_2() -> None:
    for z in (0, 1):
        assert not _features(z, "region_boundaries")
    for name, ((lon, lat), first) in FIRST_LEVEL_BORDERS.items():
        for z in (first, 5):
            tile, _ = _tile_at(z, lon, lat)
            assert tile.get("region_boundaries", {}).get("features"), f"no first-level border in {name} at zoom {z}"
        # near enough to the border at zoom 6 (a 1/64 of the world wide tile, ~1.4 km a pixel unit)
        assert _nearest_region_border(6, lon, lat) < EXTENT * 0.05, name
    # none crosses the open sea (the middle of the Bay of Biscay, ~300 km off the coast)
    assert _nearest_region_border(6, -5.0, 45.5) > EXTENT * 0.3
    # Slovenia's 212 municipalities are bordered from zoom 5 only (drawn from zoom 6), not in
    # the views of Europe before: Ljubljana is ~20 km from another first-level border
    assert _nearest_region_border(4, 14.5, 46.05) > EXTENT * 0.01
    assert _nearest_region_border(5, 14.5, 46.05) < EXTENT * 0.01


def test_first_level_areas_are_named_by_country_from_zoom_3() -> None:
    by_country: dict[str, set[str]] = defaultdict(set)
    for feature in _features(6, "regions"):
        by_country[feature["properties"]["country"]].add(feature["properties"]["name"])
    # Natural Earth 1:10m: all the world's first-level areas, by their own names
    counts = {c: len(by_country[c]) for c in ("USA", "CAN", "FRA", "DEU", "IND", "CHN", "NGA")}
    assert counts == {"USA": 51, "CAN": 13, "FRA": 101, "DEU": 16, "IND": 37, "CHN": 33, "NGA": 37}
    assert len(by_country) > 150
    assert {"Texas", "District of Columbia", "Ontario", "Prince Edward Island", "Québec", "São Paulo",
            "Amapá", "New South Wales", "Bayern", "Maharashtra", "Sichuan", "Kano",
            "Puy-de-Dôme"} <= set().union(*by_country.values())
    early = {f["properties"]["name"] for f in _features(3, "regions")}
    assert {"Texas", "Ontario", "Queensland", "Amazonas", "Sichuan"} <= early
    assert "Rhode Island" not in early  # the small ones come later


def test_rivers_carry_their_names() -> None:
    names = {f["properties"].get("name") for f in _features(5, "rivers")}
    assert {"Mississippi", "Danube", "Rio Grande", "Murray"} <= names
