"""Development stand-ins for external services: a tile server and a fake geocoder.

    python mockservices.py --port 8090
    GET /tiles/{z}/{x}/{y}.png   a 256x256 PNG labelled z/x/y (tile_grid.py)
    GET /geocode?q=text          a GeoJSON FeatureCollection with one deterministic point
Standard library only (it runs from the Waymark image); never for production.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tile_grid import render_tile  # beside this file

TILE = re.compile(r"^/tiles/(\d{1,2})/(\d+)/(\d+)\.png$")


def geocode(query: str) -> dict:
    """Same text, same point: stable enough for screenshots and tests."""
    digest = hashlib.sha256(query.strip().lower().encode()).digest()
    lon = int.from_bytes(digest[:4], "big") / 2**32 * 360 - 180
    lat = int.from_bytes(digest[4:8], "big") / 2**32 * 170 - 85
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": query, "source": "mock-geocoder"},
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}}]}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's naming
        url = urlsplit(self.path)
        match = TILE.match(url.path)
        if match:
            z, x, y = (int(g) for g in match.groups())
            if x >= 2**z or y >= 2**z:
                return self._send(404, b"no such tile", "text/plain")
            return self._send(200, render_tile(z, x, y), "image/png")
        if url.path == "/geocode":
            query = parse_qs(url.query).get("q", [""])[0]
            if not query.strip():
                return self._send(400, b'{"error": "q is required"}', "application/json")
            return self._send(200, json.dumps(geocode(query)).encode(), "application/geo+json")
        if url.path == "/healthz":
            return self._send(200, b"ok", "text/plain")
        return self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
