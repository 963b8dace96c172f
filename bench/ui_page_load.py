"""Map page load in Chromium: bytes transferred and time until the features are drawn.

Starts a real server (granian) on a temporary database with the demo map (`waymark
seed-demo`) and a public map with one layer of 1,000 features (points, lines and polygons),
then opens, in fresh browser contexts (cold cache):

- the demo map at its default view (the issue-16 target: ≤ 600 KB in total, basemap
  included, features drawn ≤ 1.5 s);
- the demo map at a view of the whole world (the built-in basemap's first world view:
  ≤ 400 KB of basemap);
- the 1,000-feature map (HTML + JS + CSS + data ≤ 300 KB).

For each it measures the bytes transferred per kind (HTML, JS, CSS, data, basemap archive
ranges, images), compressed as sent (Playwright's response body + header sizes, i.e. what
crossed the wire), after every basemap tile on screen is drawn; and the time from
navigation start to the `waymark:features-drawn` performance mark, which the page sets in
the animation frame after all layers were added to the map.

    uv run python bench/ui_page_load.py [--runs 7] [--write]

--write replaces the "Map page load (browser)" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROMIUM_ARGS, ensure_assets, start_server
from tests.servers import stop_process

SECTION = "## Map page load (browser)"
TARGET_BYTES = 300 * 1024  # HTML + JS + CSS + data of the 1,000-feature map
TARGET_DEMO_BYTES = 600 * 1024  # everything for the demo map's first view
TARGET_WORLD_BASEMAP = 400 * 1024  # the basemap for a first view of the whole world
TARGET_SECONDS = 1.5


def make_features(n: int, seed: int = 7) -> dict:
    """n features around Edinburgh: 80% points, 10% lines, 10% polygons, with properties."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lon, lat = -3.3 + rng.random() * 0.3, 55.88 + rng.random() * 0.12
        kind = i % 10
        if kind < 8:
            geometry = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
        elif kind == 8:
            geometry = {"type": "LineString", "coordinates": [
                [round(lon + 0.002 * k, 6), round(lat + 0.001 * math.sin(k), 6)] for k in range(6)]}
        else:
            ring = [[round(lon + 0.003 * math.cos(a / 6 * 2 * math.pi), 6),
                     round(lat + 0.002 * math.sin(a / 6 * 2 * math.pi), 6)] for a in range(6)]
            geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
        out.append({"type": "Feature", "geometry": geometry,
                    "properties": {"name": f"Place {i}", "category": rng.choice(["cafe", "park", "shop", "museum"]),
                                   "rating": rng.randint(1, 5)}})
    return {"type": "FeatureCollection", "features": out}


def setup_map(base: str, n: int) -> str:
    with httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 123",
                                                "display_name": "Bench"})
        r.raise_for_status()
        h = {"X-CSRF-Token": r.json()["csrf_token"]}
        m = c.post("/api/v1/maps", json={"title": "Benchmark map", "visibility": "public"}, headers=h).json()
        layer = m["layers"][0]["id"]
        data = json.dumps(make_features(n)).encode()
        r = c.post(f"/api/v1/maps/{m['id']}/layers/{layer}/import", headers=h,
                   files={"file": ("places.geojson", data, "application/geo+json")})
        assert r.status_code == 201, r.text
        c.get(f"/api/v1/maps/{m['id']}/layers/{layer}/data")  # publish the snapshot once
        return m["id"]


def seed(server) -> str:  # type: ignore[no-untyped-def]
    """The demo map, as `waymark serve` makes it on a new server."""
    from waymark.db.engine import Database
    from waymark.demo.seed import seed_demo

    db = Database(server.env["WAYMARK_DATABASE_URL"])
    try:
        return seed_demo(db)[0]
    finally:
        db.dispose()


KINDS = {"document": "HTML", "script": "JS", "stylesheet": "CSS", "fetch": "data", "xhr": "data",
         "image": "images (tiles, icons)"}


TILES_DRAWN = """() => {
    const tiles = [...document.querySelectorAll('#map .leaflet-tile-container canvas, #map .leaflet-tile-container img')];
    return tiles.length > 0 && tiles.every((t) => t.classList.contains('leaflet-tile-loaded'));
}"""


def kind_of(request) -> str:  # type: ignore[no-untyped-def]
    if ".pmtiles" in request.url:
        return "basemap"
    return KINDS.get(request.resource_type, request.resource_type)


def measure(browser, url: str) -> dict:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    records: list[tuple[str, str, int, str]] = []

    def finished(request):  # type: ignore[no-untyped-def]
        sizes = request.sizes()
        response = request.response()
        encoding = (response.headers.get("content-encoding", "") if response else "")
        records.append((kind_of(request), request.url,
                        sizes["responseBodySize"] + sizes["responseHeadersSize"], encoding))

    page.on("requestfinished", finished)
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url)
    page.wait_for_selector("#map[data-ready='1']", state="attached", timeout=30000)
    drawn_ms = page.evaluate("performance.getEntriesByName('waymark:features-drawn')[0].startTime")
    features = page.evaluate("[...window.waymark.layers.values()].reduce((n, e) => n + e.group.getLayers().length, 0)")
    page.wait_for_function(TILES_DRAWN, timeout=30000)
    page.wait_for_load_state("networkidle")
    context.close()
    by_kind: dict[str, int] = {}
    for kind, _, size, _ in records:
        by_kind[kind] = by_kind.get(kind, 0) + size
    encodings = {u.rsplit("/", 1)[-1].split("?")[0]: e for k, u, _, e in records if k in ("JS", "CSS", "data", "HTML")}
    return {"drawn_ms": drawn_ms, "features": features, "by_kind": by_kind, "errors": errors,
            "encodings": encodings}


def _median(results: list[dict], kind: str) -> float:
    return statistics.median(r["by_kind"].get(kind, 0) for r in results)


def _times(results: list[dict]) -> str:
    times = sorted(r["drawn_ms"] for r in results)
    t_med = statistics.median(times)
    return (f"features drawn after median **{t_med:.0f} ms**, min {times[0]:.0f} ms, max {times[-1]:.0f} ms "
            f"(target ≤ {TARGET_SECONDS * 1000:.0f} ms: {'met' if t_med <= TARGET_SECONDS * 1000 else 'NOT met'})")


def _met(value: float, target: int) -> str:
    return f"target ≤ {target // 1024} KiB: {'met' if value <= target else 'NOT met'}"


def report(runs: dict[str, list[dict]], n: int) -> str:
    kinds = ["HTML", "JS", "CSS", "data", "basemap", "images (tiles, icons)"]
    names = {"demo": "demo map, default view", "world": "demo map, whole world", "big": f"{n:,}-feature map"}
    median = {name: {k: _median(results, k) for k in kinds} for name, results in runs.items()}
    total = {name: sum(m.values()) for name, m in median.items()}
    first = runs["demo"][0]
    lines = [
        SECTION, "",
        (f"`uv run python bench/ui_page_load.py --runs {len(runs['demo'])} --write` — the demo map "
         f"(`waymark seed-demo`: a walk, a park and a few places in Edinburgh, zoom 13) and a public map with one "
         f"layer of {n:,} features (80% points, 10% lines, 10% polygons, 3 properties each), each opened in a fresh "
         f"Chromium context per run (cold cache, 1280×800) from a local granian server (1 worker, SQLite), counted "
         f"once every basemap tile on screen is drawn. The basemap is the built-in Natural Earth archive, read "
         f"with range requests. Chromium {first.get('browser_version', '')}, {platform.machine()}, {os.cpu_count()} "
         f"CPUs, load average {os.getloadavg()[0]:.1f} during the run (other work shared the machine: times are "
         f"upper bounds), Python {platform.python_version()}."), "",
        "| transferred (compressed, as sent), median | " + " | ".join(names[k] for k in runs) + " |",
        "|---|" + "---:|" * len(runs),
        *[f"| {k} | " + " | ".join(f"{median[name][k] / 1024:.1f} KiB" for name in runs) + " |" for k in kinds],
        "| **total** | " + " | ".join(f"**{total[name] / 1024:.1f} KiB**" for name in runs) + " |", "",
        (f"- Demo map, first view: **{total['demo'] / 1024:.1f} KiB** in total "
         f"({_met(total['demo'], TARGET_DEMO_BYTES)}); {_times(runs['demo'])}."),
        (f"- Whole world: **{median['world']['basemap'] / 1024:.1f} KiB** of basemap "
         f"({_met(median['world']['basemap'], TARGET_WORLD_BASEMAP)})."),
        (f"- {n:,}-feature map: HTML + JS + CSS + data **"
         f"{sum(median['big'][k] for k in kinds[:4]) / 1024:.1f} KiB** "
         f"({_met(sum(median['big'][k] for k in kinds[:4]), TARGET_BYTES)}); {_times(runs['big'])}; "
         f"features drawn: {runs['big'][0]['features']}."), "",
        "Content codings seen: " + ", ".join(f"{name} {enc or 'identity'}"
                                             for name, enc in sorted(first["encodings"].items())) + ".",
        ("The JS/CSS bundle is precompressed at build time (gzip and brotli) and the basemap archive is served "
         "with `immutable` caching, so a repeat visit transfers only the HTML and the layer data (the layer "
         "snapshot is gzip-compressed and revalidated by ETag)."), "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = REPO / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n\n"
    if SECTION in current:
        start = current.index(SECTION)
        rest = current[start + len(SECTION):]
        nxt = rest.find("\n## ")
        end = len(current) if nxt < 0 else start + len(SECTION) + nxt + 1
        current = current[:start] + text + current[end:]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    ensure_assets()
    server = start_server(Path(tempfile.mkdtemp(prefix="waymark-bench-")) / "var")
    try:
        map_id = setup_map(server.url, args.features)
        demo_id = seed(server)
        urls = {"demo": f"{server.url}/m/{demo_id}", "world": f"{server.url}/m/{demo_id}#2/30/0",
                "big": f"{server.url}/m/{map_id}"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for url in urls.values():
                measure(browser, url)  # warm the server, not the browser
            runs = {name: [measure(browser, url) for _ in range(args.runs)] for name, url in urls.items()}
            runs["demo"][0]["browser_version"] = browser.version
            browser.close()
    finally:
        stop_process(server.process)
    results = [r for rs in runs.values() for r in rs]
    errors = [e for r in results for e in r["errors"]]
    if errors:
        print("console errors:", *errors, sep="\n  ")
    text = report(runs, args.features)
    print(text)
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "ui_page_load.json").write_text(json.dumps(results, indent=2))
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
