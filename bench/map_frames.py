"""Map page frame times in Chromium with big styled point layers (issue 19, "Density").

Starts a real server (granian, SQLite) on a temporary data dir, imports the 42,049 US
ZIP-code points (tests/data/cartography/zipcodes.csv) into one public map and a seeded
random 10,000 of them into another, and for each scenario sets the layer style through
the API and opens the map page in a fresh Chromium context (cold cache, 1280×800):

- ``categorized-10k`` / ``categorized-42k``: points coloured by state (ten categories
  and "Other"), drawn plainly (canvas dots: more than 300 points);
- ``cluster-42k``: clusters with counts (dissolving at zoom 14);
- ``heatmap-42k``: heatmap, radius 12.

Measured per run: *ready*, the time from navigation start to the first animation frame in
which the layer is drawn as styled (dots on the canvas, cluster icons, the heat canvas);
then a fixed interaction made of real mouse input over the US — two drag pans, three
wheel zooms in towards New York (zoom 4 → 10), a drag there, three wheel zooms out — while the page
records every animation frame's duration (requestAnimationFrame deltas) and every long
task (PerformanceObserver ``longtask``, > 50 ms of main thread work). A frame over 50 ms
is a visible stutter; a task over ~200 ms is what people call freezing.

    .venv/bin/python bench/map_frames.py [--runs 3] [--no-results]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import (
    machine_notes,
    md_table,
    notes_line,
    percentile,
    print_table,
    update_results,
)
from tests.e2e.conftest import CHROMIUM_ARGS, ensure_assets, start_server
from tests.servers import stop_process

ZIPCODES = REPO / "tests" / "data" / "cartography" / "zipcodes.csv"
TABLEAU10 = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
             "#ff9da7", "#9c755f", "#bab0ac"]
VIEW = "#4/39/-96"

def categorized(states: list[str]) -> dict:
    """Coloured by state: the ten biggest states, the rest "Other"."""
    return {"rule": {"type": "categorized", "property": "state",
                     "categories": [{"value": s, "color": c} for s, c in zip(states, TABLEAU10)]}}


#: name -> (which map, the layer style document for the ten biggest states)
SCENARIOS = {
    "categorized-10k": ("10k", lambda top: categorized(top)),
    "categorized-42k": ("42k", lambda top: categorized(top)),
    "cluster-42k": ("42k", lambda top: {"display": {"mode": "cluster", "clusterMaxZoom": 14}}),
    "heatmap-42k": ("42k", lambda top: {"display": {"mode": "heatmap", "heatRadius": 12}}),
}
DRAWN = {  # the layer is on screen as styled
    "categorized": "() => document.querySelector('#map canvas.leaflet-zoom-animated') !== null",
    "cluster": "() => document.querySelector('#map .marker-cluster') !== null",
    "heatmap": "() => document.querySelector('#map canvas.leaflet-heatmap-layer') !== null",
}

READY_AT = """(drawn) => new Promise((resolve) => {
    const test = new Function('return (' + drawn + ')()');
    const tick = () => (document.getElementById('map').dataset.ready === '1' && test())
        ? resolve(performance.now()) : requestAnimationFrame(tick);
    tick();
})"""

RECORD = """() => {
    const rec = window.__frames = {deltas: [], tasks: [], zooms: [], stop: false};
    window.waymark.map.on('zoomend', (e) => rec.zooms.push(e.target.getZoom()));
    new PerformanceObserver((list) => { for (const e of list.getEntries()) rec.tasks.push(e.duration); })
        .observe({type: 'longtask'});
    let last = performance.now();
    const tick = (t) => { rec.deltas.push(t - last); last = t; if (!rec.stop) requestAnimationFrame(tick); };
    requestAnimationFrame((t) => { last = t; requestAnimationFrame(tick); });
}"""

SETTLED = """() => {
    const map = window.waymark.map;
    if (map._animatingZoom || map._panAnim && map._panAnim._inProgress) return false;
    for (const e of window.waymark.layers.values()) {
        const c = e.view && e.view.wmCluster;
        if (c && c._inZoomAnimation) return false;
    }
    return true;
}"""


def make_csv(rows: list[dict], fields: list[str]) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue().encode()


def setup(c: httpx.Client) -> tuple[dict[str, tuple[str, str, str]], list[str]]:
    """Two public maps ({"10k"|"42k": (map id, layer id, csrf)}) and the ten biggest states."""
    with ZIPCODES.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    top = sorted(counts, key=lambda s: -counts[s])[:10]
    sample = random.Random(19).sample(rows, 10_000)
    r = c.post("/api/v1/auth/signup", json={"email": "bench@example.com", "password": "bench password 123",
                                            "display_name": "Bench"})
    r.raise_for_status()
    csrf = r.json()["csrf_token"]
    maps = {}
    for name, data in (("10k", make_csv(sample, fields)), ("42k", ZIPCODES.read_bytes())):
        m = c.post("/api/v1/maps", json={"title": f"ZIP codes {name}", "visibility": "public"},
                   headers={"X-CSRF-Token": csrf}).json()
        r = c.post(f"/api/v1/maps/{m['id']}/import", headers={"X-CSRF-Token": csrf},
                   files={"file": ("zipcodes.csv", data, "text/csv")})
        assert r.status_code == 201, r.text
        maps[name] = (m["id"], r.json()["layers"][0]["id"], csrf)
    return maps, top


def set_style(c: httpx.Client, maps: dict, which: str, style: dict) -> None:
    map_id, layer_id, csrf = maps[which]
    r = c.patch(f"/api/v1/maps/{map_id}/layers/{layer_id}", json={"style": style},
                             headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


def interact(page) -> None:  # type: ignore[no-untyped-def]
    """Real mouse input: drags and wheel zooms, each waited for until the map settled."""
    def settle() -> None:
        page.wait_for_function(SETTLED, timeout=60000)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def drag(dx: int, dy: int) -> None:
        page.mouse.move(800, 420)
        page.mouse.down()
        page.mouse.move(800 + dx, 420 + dy, steps=20)
        page.mouse.up()
        settle()

    def wheel(x: int, y: int, dy: int) -> None:
        page.mouse.move(x, y)
        page.mouse.wheel(0, dy)
        page.wait_for_timeout(150)  # Leaflet collects wheel events for 40 ms before zooming
        settle()

    drag(-250, 0)
    drag(250, 60)
    for _ in range(3):
        wheel(1080, 330, -120)  # towards the north-east US
    drag(-200, -120)
    for _ in range(3):
        wheel(800, 420, 120)


def measure(browser, url: str, kind: str) -> dict:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url, timeout=120000)
    ready_ms = page.evaluate(READY_AT, DRAWN[kind])
    page.evaluate(RECORD)
    interact(page)
    rec = page.evaluate("() => { window.__frames.stop = true; return window.__frames; }")
    assert rec["zooms"] == [6, 8, 10, 8, 6, 4], f"the input did not zoom: {rec['zooms']}"
    context.close()
    return {"ready_ms": ready_ms, "frames": rec["deltas"], "tasks": rec["tasks"], "errors": errors}


def summarize(name: str, runs: list[dict]) -> list[object]:
    frames = sorted(d for r in runs for d in r["frames"])
    tasks = [t for r in runs for t in r["tasks"]]
    slow = sum(1 for d in frames if d > 50)
    return [name, f"{statistics.median(r['ready_ms'] for r in runs):.0f}",
            f"{max(r['ready_ms'] for r in runs):.0f}", len(frames),
            f"{percentile(frames, 50):.1f}", f"{percentile(frames, 95):.1f}", f"{percentile(frames, 99):.1f}",
            f"{frames[-1]:.0f}", f"{100 * slow / max(1, len(frames)):.1f} %",
            len(tasks), f"{max(tasks, default=0):.0f}"]


HEADERS = ["scenario", "ready ms (median)", "ready ms (max)", "frames", "frame p50 ms", "frame p95 ms",
           "frame p99 ms", "frame max ms", "frames > 50 ms", "long tasks", "longest task ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-results", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    ensure_assets()
    notes = machine_notes()
    server = start_server(Path(tempfile.mkdtemp(prefix="waymark-bench-")) / "var")
    rows, raw, version = [], {}, ""
    try:
        client = httpx.Client(base_url=server.url, timeout=300)
        maps, top = setup(client)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            version = browser.version
            for name, (which, style) in SCENARIOS.items():
                set_style(client, maps, which, style(top))
                url = f"{server.url}/m/{maps[which][0]}{VIEW}"
                kind = name.split("-")[0]
                measure(browser, url, kind)  # warm the server (snapshot built), not the browser
                runs = [measure(browser, url, kind) for _ in range(args.runs)]
                raw[name] = runs
                rows.append(summarize(name, runs))
                print(f"{name}: done", flush=True)
            browser.close()
        client.close()
    finally:
        stop_process(server.process)
    errors = [e for rs in raw.values() for r in rs for e in r["errors"]]
    print_table(HEADERS, rows)
    if errors:
        print("console errors:", *errors, sep="\n  ")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "map_frames.json").write_text(json.dumps(raw))
    body = "\n".join([
        "## Map page frame times with big styled point layers (browser)", "",
        f"Command: `.venv/bin/python bench/map_frames.py --runs {args.runs}`  ",
        ("Data: the 42,049 US ZIP-code points (tests/data/cartography/zipcodes.csv) and a seeded random 10,000 "
         "of them, imported as CSV; styled through the API; the map page opened at zoom 4 over the US in a fresh "
         f"headless Chromium {version} context per run (1280×800, software rendering: `--disable-gpu`), after one "
         "warm-up visit. *ready*: navigation start → first animation frame with the layer drawn as styled. "
         "Frames: every requestAnimationFrame interval during real mouse input (2 drag pans, 3 wheel zooms in "
         "towards New York (zoom 4 → 10), a drag, 3 wheel zooms out, each waited for until the map settled), all runs "
         "together; long tasks: PerformanceObserver `longtask` (> 50 ms) in that time.  "),
        notes_line(notes), "",
        md_table(HEADERS, rows), "",
        ("Console errors: none." if not errors else f"Console errors: {len(errors)} (see the script's output)."),
    ])
    if not args.no_results:
        update_results("map_frames", body)


if __name__ == "__main__":
    main()
