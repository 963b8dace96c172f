"""Loopback stand-ins for the outside services a map uses: raster tile servers (XYZ and
WMTS) and geocoders (Nominatim and Photon), speaking those protocols on 127.0.0.1.

    with outside_services() as services:
        services.url            # http://127.0.0.1:PORT
        services.requests       # every request seen: (path, query dict, headers)

Tiles are the generated grid of deploy/compose/mocks/tile_grid.py. The geocoders know a
few places (PLACES) and answer anything else with no result.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers import LOOPBACK

_spec = importlib.util.spec_from_file_location(
    "tile_grid", Path(__file__).resolve().parents[1] / "deploy" / "compose" / "mocks" / "tile_grid.py")
assert _spec and _spec.loader
tile_grid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tile_grid)

XYZ = re.compile(r"^/xyz/(\d{1,2})/(\d+)/(\d+)\.png$")
# name -> (lat, lon, country, [south, north, west, east])
PLACES = {
    "lyon": (45.758, 4.835, "France", [45.70, 45.81, 4.77, 4.90]),
    "timbuktu": (16.773, -3.007, "Mali", [16.74, 16.80, -3.04, -2.97]),
}


@dataclass
class OutsideServices:
    url: str
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    fail: bool = False  # answer 503 to geocoding (a provider that is down)

    def count(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


def _matches(query: str) -> list[tuple[str, tuple[float, float, str, list[float]]]]:
    q = query.strip().lower()
    return [(name, place) for name, place in PLACES.items() if q and name.startswith(q.split(",")[0])]


def _nominatim(query: str, limit: int) -> list[dict[str, Any]]:
    return [{"place_id": i + 1, "lat": str(lat), "lon": str(lon), "class": "place", "type": "city",
             "display_name": f"{name.title()}, {country}",
             "boundingbox": [str(b) for b in box], "importance": 0.7}
            for i, (name, (lat, lon, country, box)) in enumerate(_matches(query)[:limit])]


def _photon(query: str, limit: int) -> dict[str, Any]:
    features = []
    for name, (lat, lon, country, (south, north, west, east)) in _matches(query)[:limit]:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {"name": name.title(), "country": country, "osm_key": "place",
                                        "osm_value": "city", "type": "city",
                                        "extent": [west, north, east, south]}})
    return {"type": "FeatureCollection", "features": features}


def _handler(services: OutsideServices) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # http.server's naming
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            services.requests.append((url.path, query, dict(self.headers.items())))
            match = XYZ.match(url.path)
            if match:
                z, x, y = (int(g) for g in match.groups())
                return self._tile(z, x, y)
            if url.path == "/wmts":
                if query.get("SERVICE") != "WMTS" or query.get("REQUEST") != "GetTile":
                    return self._send(400, b"not a WMTS GetTile request", "text/plain")
                return self._tile(int(query["TILEMATRIX"]), int(query["TILECOL"]), int(query["TILEROW"]))
            if url.path in ("/search", "/api"):
                if services.fail:
                    return self._send(503, b"overloaded", "text/plain")
                limit = int(query.get("limit", "10"))
                if url.path == "/search":
                    body = _nominatim(query.get("q", ""), limit)
                    return self._send(200, json.dumps(body).encode(), "application/json")
                body = _photon(query.get("q", ""), limit)
                return self._send(200, json.dumps(body).encode(), "application/json")
            return self._send(404, b"not found", "text/plain")

        def _tile(self, z: int, x: int, y: int) -> None:
            if not (0 <= z <= 22 and 0 <= x < 2**z and 0 <= y < 2**z):
                return self._send(404, b"no such tile", "text/plain")
            return self._send(200, tile_grid.render_tile(z, x, y), "image/png")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def outside_services() -> Iterator[OutsideServices]:
    services = OutsideServices("")
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(services))
    services.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield services
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
