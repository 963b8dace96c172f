"""GPX completeness: route points keep their names, descriptions, symbols and turn
instructions (on the route, or as points of their own), and exports keep per-point times
and elevations."""

from __future__ import annotations

import pytest

from waymark.formats import ExportLayer, ReadOptions, read, write

TURNS = b"""<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="OsmAnd" xmlns="http://www.topografix.com/GPX/1/1">
  <rte><name>To the lake</name>
    <rtept lat="46.0" lon="7.0"><ele>500</ele><time>2024-05-01T08:00:00Z</time>
      <name>Start</name><desc>Head north on Main Street</desc>
      <extensions><turn>C</turn></extensions></rtept>
    <rtept lat="46.01" lon="7.0"><ele>512.5</ele><time>2024-05-01T08:03:00Z</time>
      <desc>Turn left onto Lake Road</desc><sym>Left</sym>
      <extensions><turn>TL</turn></extensions></rtept>
    <rtept lat="46.01" lon="6.99"><ele>498</ele><time>2024-05-01T08:06:00Z</time>
      <name>Lake</name><sym>Flag, Blue</sym></rtept>
  </rte>
  <wpt lat="46.02" lon="6.98"><name>Cafe</name><sym>Restaurant</sym></wpt>
</gpx>
"""


def test_route_points_become_per_point_lists_of_the_route() -> None:
    (route, cafe) = read(TURNS, "gpx").layers[0].features
    assert route.geometry["coordinates"] == [[7.0, 46.0, 500.0], [7.0, 46.01, 512.5],
                                             [6.99, 46.01, 498.0]]
    assert route.properties["coordinateProperties"] == {
        "times": ["2024-05-01T08:00:00Z", "2024-05-01T08:03:00Z", "2024-05-01T08:06:00Z"],
        "names": ["Start", None, "Lake"],
        "descs": ["Head north on Main Street", "Turn left onto Lake Road", None],
        "syms": [None, "Left", "Flag, Blue"],
        "turns": ["C", "TL", None]}
    assert cafe.properties["sym"] == "Restaurant"  # the waypoint symbol, for icons


def test_route_points_as_points_of_their_own() -> None:
    features = read(TURNS, "gpx", options=ReadOptions(route_points="points")).layers[0].features
    route, *points, _cafe = features
    assert route.properties["gpx_type"] == "route"
    assert [p.properties for p in points] == [
        {"name": "Start", "desc": "Head north on Main Street", "turn": "C",
         "time": "2024-05-01T08:00:00Z", "gpx_type": "route_point", "route": "To the lake"},
        {"desc": "Turn left onto Lake Road", "sym": "Left", "turn": "TL",
         "time": "2024-05-01T08:03:00Z", "gpx_type": "route_point", "route": "To the lake"},
        {"name": "Lake", "sym": "Flag, Blue", "time": "2024-05-01T08:06:00Z",
         "gpx_type": "route_point", "route": "To the lake"}]
    assert points[1].geometry == {"type": "Point", "coordinates": [7.0, 46.01, 512.5]}


@pytest.mark.parametrize("fmt", ["gpx", "geojson", "kml", "gpkg", "shapefile"])
def test_exports_keep_per_point_times_elevations_and_texts(fmt: str) -> None:
    parsed = read(TURNS, "gpx").layers[0].features
    layer = ExportLayer("trip", {}, [{"id": str(i), "geometry": f.geometry,
                                      "properties": f.properties} for i, f in enumerate(parsed)])
    data = write([layer], fmt)
    back = [f for f in read(data, fmt).layers[0].features if f.geometry["type"] == "LineString"]
    (route,) = back
    assert [p[2] for p in route.geometry["coordinates"]] == [500.0, 512.5, 498.0]
    cp = route.properties["coordinateProperties"]
    if fmt in ("gpkg", "shapefile"):  # nested values are JSON text in attribute tables
        import json

        cp = json.loads(cp)
    assert cp == parsed[0].properties["coordinateProperties"]
    if fmt == "gpx":  # written as GPX elements other tools read, not only as our extension
        text = data.decode()
        assert "<rtept lat=\"46.01\" lon=\"7\"><ele>512.5</ele><time>2024-05-01T08:03:00Z" \
               "</time><desc>Turn left onto Lake Road</desc><sym>Left</sym>" in text
