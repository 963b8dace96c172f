"""Throughput of a published layer snapshot: Waymark vs nginx serving the same gzip bytes.

    .venv/bin/python bench/snapshot_wrk.py [--features 1000] [--duration 15] [--connections 32]
                                           [--rounds 3] [--max-steal 5]

Sets up a fresh data dir with a public map whose layer holds 1,000 features (90 % points
with realistic properties, 10 % 20-vertex lines), imported through the HTTP API. Starts
`waymark serve --workers 2 --no-job-worker` (WAYMARK_DEMO_DATA=false) on a free loopback
port, GETs the layer `data_url` (publishes the snapshot), reads `snapshot_url` from the layer
JSON, then runs `wrk -t2 -c32 -d15s --latency -H 'Accept-Encoding: gzip'` against:

  1. Waymark, snapshot_url, gzip                (the hot read path)
  2. nginx (2 workers, own config and prefix), the same gzip bytes as a static file with
     Content-Encoding: gzip and Content-Type application/geo+json (the ceiling)

in `--rounds` rounds, each one run of both, the order alternating from round to round; then
once more against 3. Waymark, snapshot_url, no Accept-Encoding (the uncompressed path).

wrk shares the two cores with the server, and this VM's CPU steal (time the hypervisor gives
to other guests) varies from 0 to 40 % within minutes: single runs of the same code differed
by a third. So the verdict is the median over the rounds of Waymark / nginx within a round
(both runs of a round see similar conditions); a round in which either run saw more than
`--max-steal` % steal is listed but does not count, and another round is run instead (at
most `--rounds` extra). If too few quiet rounds remain, all rounds count and the result says
so. Every run is listed with the steal measured during it.

Target: Waymark (1) >= 25 % of nginx (2) req/s.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET_RATIO = 0.25
EMAIL = "bench@example.org"
PASSWORD = "bench-password-123"

NGINX_CONF = """\
worker_processes 2;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fastcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    server {{
        listen {host}:{port};
        root {root};
        location / {{
            types {{ }}
            default_type application/geo+json;
            add_header Content-Encoding gzip;
            add_header Cache-Control "public, max-age=31536000, immutable";
            add_header Vary Accept-Encoding;
        }}
    }}
}}
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.MULTILINE)
        res[f"p{pct}"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else "none"
    m = re.search(r"Transfer/sec:\s+(\S+)", out)
    res["transfer"] = m.group(1) if m else "?"
    return res


def run_wrk(url: str, duration: int, connections: int, threads: int, gzip: bool) -> dict:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if gzip:
        args += ["-H", "Accept-Encoding: gzip"]
    args.append(url)
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}")
    return parse_wrk(out.stdout)


def setup_layer(base: str, features: int) -> tuple[str, str, bytes]:
    """A public map with one imported layer; returns (snapshot_url, data_url, gzip bytes)."""
    token = c.login_token(base, EMAIL, PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=120) as cl:
        r = cl.post("/api/v1/maps", json={"title": "Bench snapshot map", "visibility": "public"})
        r.raise_for_status()
        m = r.json()
        map_id, layer_id = m["id"], m["layers"][0]["id"]
        body = c.mixed_geojson(features)
        r = cl.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/import",
                    params={"filename": "bench.geojson"}, content=body,
                    headers={"Content-Type": "application/geo+json"})
        r.raise_for_status()
        layer_url = f"/api/v1/maps/{map_id}/layers/{layer_id}"
        layer = cl.get(layer_url).json()
        assert layer["feature_count"] == features, layer
    with httpx.Client(base_url=base, timeout=60) as anon:  # visitors: no token
        r = anon.get(layer["data_url"])
        r.raise_for_status()
        for _ in range(50):
            layer = anon.get(layer_url).json()
            if layer["snapshot_url"]:
                break
            time.sleep(0.1)
        snap = layer["snapshot_url"]
        if not snap:
            raise RuntimeError(f"layer has no snapshot_url after publishing: {layer}")
        r = anon.get(snap, headers={"Accept-Encoding": "gzip"})
        r.raise_for_status()
        # httpx decodes gzip transparently; re-fetch the raw bytes.
        with anon.stream("GET", snap, headers={"Accept-Encoding": "gzip"}) as s:
            assert s.headers.get("content-encoding") == "gzip", s.headers
            gz = b"".join(s.iter_raw())
        print(f"snapshot: {snap}  gzip {len(gz):,} B, raw {len(r.content):,} B, "
              f"content-type {r.headers.get('content-type')}, cache-control {r.headers.get('cache-control')}")
    return snap, layer["data_url"], gz


def start_nginx(tmp: Path, gz: bytes) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = tmp / "nginx"
    root = prefix / "root"
    root.mkdir(parents=True)
    (root / "snapshot.geojson").write_bytes(gz)
    for p in (tmp, prefix, root):  # nginx workers run as nobody when started by root
        p.chmod(0o755)
    (root / "snapshot.geojson").chmod(0o644)
    port = c.free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, host=c.LOOPBACK, port=port, root=root))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(prefix)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{c.LOOPBACK}:{port}/snapshot.geojson"
    c.wait_http(url, 15, proc)
    with httpx.Client() as cl, cl.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as s:
        assert s.headers.get("content-encoding") == "gzip"
        assert b"".join(s.iter_raw()) == gz, "nginx serves different bytes"
    return proc, url


def fmt_row(name: str, r: dict, ratio: str = "") -> list:
    return [name, f"{r['rps']:,.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}", r["transfer"],
            r["non2xx"], r["socket_errors"], f"{r['steal_pct']:.1f}", ratio]


def measure(url: str, args: argparse.Namespace, gzip: bool) -> dict:
    """One wrk run, with the machine's CPU steal during it."""
    before = c.cpu_jiffies()
    res = run_wrk(url, args.duration, args.connections, args.threads, gzip)
    res["steal_pct"] = c.steal_pct(before, c.cpu_jiffies())
    return res


def quiet(round_: tuple[dict, dict], max_steal: float) -> bool:
    return all(r["steal_pct"] <= max_steal for r in round_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    ap.add_argument("--max-steal", type=float, default=5.0,
                    help="a round with more CPU steal (%%) in either run is run again")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk nginx")
    args.duration = min(args.duration, 120)  # bounded
    args.rounds = max(1, min(args.rounds, 9))

    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-snap-"))
    data_dir = tmp / "data"
    rounds: list[tuple[dict, dict]] = []  # (waymark gzip, nginx) per round
    nginx_proc = None
    try:
        c.setup_data_dir(data_dir, EMAIL, PASSWORD)
        # The anonymous-read rate limit (3000/minute per IP) would answer most of wrk's
        # requests with 429: measure serving, not the limiter.
        with c.waymark_server(data_dir, workers=args.workers, WAYMARK_SESSION_STORE="file",
                              WAYMARK_RATE_LIMITS="anon_read=off") as (base, proc):
            snap, _data_url, gz = setup_layer(base, args.features)
            nginx_proc, nginx_url = start_nginx(tmp, gz)
            targets = {"waymark": base + snap, "nginx": nginx_url}
            for url in targets.values():  # short warm-up: each worker has the bytes cached
                run_wrk(url, 2, args.connections, args.threads, True)
            print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
                  f"{args.rounds} rounds ...")
            i = 0
            while sum(quiet(r, args.max_steal) for r in rounds) < args.rounds \
                    and i < 2 * args.rounds:
                order = ["waymark", "nginx"] if i % 2 == 0 else ["nginx", "waymark"]
                got = {name: measure(targets[name], args, True) for name in order}
                rounds.append((got["waymark"], got["nginx"]))
                i += 1
                print(f"  round {i}: waymark {got['waymark']['rps']:,.0f} req/s, nginx "
                      f"{got['nginx']['rps']:,.0f} req/s "
                      f"({got['waymark']['rps'] / max(1.0, got['nginx']['rps']):.1%}), steal "
                      f"{got['waymark']['steal_pct']:.1f} / {got['nginx']['steal_pct']:.1f} %"
                      + ("" if quiet(rounds[-1], args.max_steal) else ": noisy, run again"))
            identity = measure(base + snap, args, False)
            print(f"  waymark identity: {identity['rps']:,.0f} req/s")
            rss = []
            for pid in c.server_pids(proc):
                try:
                    rss.append(c.psutil.Process(pid).memory_info().rss / 2**20)
                except c.psutil.NoSuchProcess:
                    pass
    finally:
        if nginx_proc is not None:
            c.stop_pid_tree(nginx_proc)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    ratios = [w["rps"] / n["rps"] if n["rps"] else 0.0 for w, n in rounds]
    counted = [k for k, r in enumerate(rounds) if quiet(r, args.max_steal)]
    note = ""
    if len(counted) < args.rounds:
        counted = list(range(len(rounds)))
        note = (f" (fewer than {args.rounds} rounds under {args.max_steal:g} % steal: all "
                "rounds counted; a noisy machine, run again later)")
    ratio = statistics.median(ratios[k] for k in counted)
    waymark_median = statistics.median(rounds[k][0]["rps"] for k in counted)
    nginx_median = statistics.median(rounds[k][1]["rps"] for k in counted)
    headers = ["run", "req/s", "p50 ms", "p99 ms", "transfer/s", "non-2xx", "socket errors",
               "CPU steal %", "vs nginx (same round)"]
    rows = []
    for i, ((w, n), r) in enumerate(zip(rounds, ratios), 1):
        flag = "" if i - 1 in counted else " (not counted)"
        rows.append(fmt_row(f"{i}. Waymark snapshot_url, gzip", w, f"{r:.1%}{flag}"))
        rows.append(fmt_row(f"{i}. nginx static file, same gzip bytes", n, "100 %"))
    rows.append(fmt_row("Waymark snapshot_url, no Accept-Encoding", identity,
                        f"{identity['rps'] / nginx_median:.1%} of the nginx median"))
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    summary = (f"Waymark / nginx in the counted rounds: "
               f"{', '.join(f'{ratios[k]:.1%}' for k in counted)}; median {ratio:.1%} "
               f"(target ≥ {TARGET_RATIO:.0%}): {verdict}{note}. Medians of the counted runs: "
               f"Waymark {waymark_median:,.0f} req/s, nginx {nginx_median:,.0f} req/s.")
    print()
    c.print_table(headers, rows)
    print("\n" + summary)
    print("server process RSS MB (serve, granian, workers):", [f"{x:.0f}" for x in rss])
    if not args.no_results:
        load = (f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
                f"--latency -H 'Accept-Encoding: gzip' URL`, rounds of one run each against "
                "Waymark and nginx, the order alternating, after a 2 s warm-up of each; wrk "
                "shares the cores with the server. Verdict: the median of the per-round ratios "
                f"over {args.rounds} rounds in which neither run saw more than "
                f"{args.max_steal:g} % CPU steal (noisier rounds are listed, not counted, and "
                f"run again). Waymark: `waymark serve --workers {args.workers} "
                "--no-job-worker`, WAYMARK_DEMO_DATA=false, WAYMARK_RATE_LIMITS=anon_read=off, "
                "public map, anonymous GET of `snapshot_url`. nginx: 2 workers, `sendfile on`, "
                f"same {len(gz):,}-byte gzip file with `Content-Encoding: gzip`, "
                "`application/geo+json`.  ")
        tail = (f"**{summary}** Server RSS MB (serve wrapper, granian main, workers): "
                f"{', '.join(f'{x:.0f}' for x in rss)}.")
        body = "\n".join([
            f"## 2. Snapshot throughput: Waymark vs nginx ({args.features:,}-feature layer)", "",
            "Command: `" + c.command_prefix() + ".venv/bin/python bench/snapshot_wrk.py`  ",
            load, c.notes_line(notes), "", c.md_table(headers, rows), "", tail, ""])
        c.update_results("snapshot_wrk", body)


if __name__ == "__main__":
    main()
