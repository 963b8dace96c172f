"""Single-feature edit latency on a 100,000-feature layer under 16 concurrent editors.

    .venv/bin/python bench/update_p99.py [--duration 20] [--clients 16] [--phases default,no-publish]

Setup: fresh data dir, `waymark migrate`, `waymark user create`, `waymark import` of the
100k-point file from import_100k.py; `waymark serve --workers 2 --no-job-worker` (default
SQLite); log in over HTTP and create a write-scoped API token (POST /api/v1/tokens with the
login's csrf_token); GET the layer `data_url` once so the layer is published.

Load: N asyncio clients in one process, each with its own keep-alive HTTP/1.1 connection
(a minimal raw client, RawConnection; `--client httpx` for the shared httpx pool used before,
which cost ~3 ms of load-process CPU per request), each on its own disjoint subset of feature
ids, each first making one unmeasured warm-up edit (opens its connection; the run prints how
the connections spread over the server processes), then (with the load client's garbage
collector off while timing) doing back-to-back
`PATCH /api/v1/maps/{m}/layers/{l}/features/{fid}` with `{"properties": {...}}` and
`If-Match: "<version it knows>"` for a fixed duration. Latency = request start to response
read, measured in the client. 412s are counted separately (and the client adopts the ETag).

Phases (each on a freshly started server, same database):
  default     - as shipped: every edit schedules the background snapshot Publisher, which
                rebuilds the 100k layer (per worker process) while edits run.
  no-publish  - WAYMARK_SNAPSHOT_DELAY_MS=600000: the Publisher waits 10 minutes before
                building, so no rebuild happens during the run (isolates its effect).
  paced       - as shipped, but each client sends --rate edits/s (default 4, so 64 edits/s
                in all) on a fixed schedule: an open-loop load at a stated rate. Latency is
                measured from the scheduled send time, so server queueing is not hidden.
Target: p99 <= 30 ms, 0 errors. The closed-loop phases measure saturation (latency there is
clients / throughput); the paced phase measures latency at a stated load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET_P99_MS = 30.0
EMAIL = "bench@example.org"
PASSWORD = "bench-password-123"


def import_layer(data_dir: Path, n: int) -> None:
    env = c.setup_data_dir(data_dir, EMAIL, PASSWORD)
    path = data_dir / f"points-{n}.geojson"
    path.write_bytes(c.points_geojson(n))
    t = time.perf_counter()
    c.run_cli(["import", str(path), "--owner", EMAIL], env)
    print(f"imported {n:,} features in {time.perf_counter() - t:.1f}s")
    path.unlink()


def discover(base: str, token: str) -> tuple[str, str, dict[str, int]]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=120) as cl:
        maps = cl.get("/api/v1/maps", params={"scope": "mine"}).json()
        map_id = maps[0]["id"] if isinstance(maps, list) else maps["maps"][0]["id"]
        layer = cl.get(f"/api/v1/maps/{map_id}").json()["layers"][0]
        versions: dict[str, int] = {}
        after = None
        while True:
            params = {"limit": 10000}
            if after:
                params["after"] = after
            page = cl.get(f"/api/v1/maps/{map_id}/layers/{layer['id']}/features", params=params)
            page.raise_for_status()
            body = page.json()
            for f in body["features"]:
                versions[f["id"]] = f["version"]
            after = body.get("next")
            if not after:
                break
        return map_id, layer["id"], versions


def publish_first(base: str, token: str, map_id: str, layer_id: str) -> float:
    t = time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300) as cl:
        cl.get(f"/api/v1/maps/{map_id}/layers/{layer_id}/data").raise_for_status()
    return time.perf_counter() - t


def server_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the server processes."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


class CpuSampler(threading.Thread):
    """CPU % of each server process, sampled every 0.5 s."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.procs = []
        for pid in pids:
            try:
                p = psutil.Process(pid)
                p.cpu_percent(None)
                self.procs.append(p)
            except psutil.NoSuchProcess:
                pass
        self.samples: list[tuple[float, list[float]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            row = []
            for p in self.procs:
                try:
                    row.append(p.cpu_percent(None))
                except psutil.NoSuchProcess:
                    row.append(0.0)
            self.samples.append((time.monotonic(), row))


class RawConnection:
    """One keep-alive HTTP/1.1 connection with just enough protocol for the timed PATCHes.

    httpx spent ~3 ms of the load process's CPU per request here (19-22 % of a core at 64
    requests/s), and with 16 clients in one event loop that time queued responses behind
    each other and was counted as server latency. This costs a small fraction of that.
    """

    def __init__(self, base: str, token: str) -> None:
        self.host, port = base.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes,
                      headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n")
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        got = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                got[name.strip().lower()] = value.strip()
        if "content-length" in got:
            await self.reader.readexactly(int(got["content-length"]))
        elif got.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if got.get("connection") == "close":
            self.close()
        return status, got

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class HttpxConnection:
    """The same interface over a shared httpx client (the method before 2026-12-03 evening)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, body: bytes,
                      headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        r = await self.client.request(method, path, content=body,
                                      headers={"Content-Type": "application/json", **headers})
        return r.status_code, {k.lower(): v for k, v in r.headers.items()}

    def close(self) -> None:
        pass


async def load(base: str, token: str, map_id: str, layer_id: str, versions: dict[str, int],
               clients: int, duration: float, seed: int = 1, rate: float = 0.0,
               client_kind: str = "raw") -> dict:
    """rate 0: each client sends back to back (closed loop, saturation). rate R: each client
    sends R edits/s on a fixed schedule (open loop) and latency counts from the scheduled
    time, so a slow server is charged for the queueing it causes (no coordinated omission)."""
    ids = sorted(versions)
    random.Random(seed).shuffle(ids)
    subsets = [ids[i::clients] for i in range(clients)]
    lat: list[tuple[float, float]] = []  # (start monotonic, ms)
    counts = {"ok": 0, "412": 0, "errors": 0}
    errors: dict[str, int] = {}
    url = f"/api/v1/maps/{map_id}/layers/{layer_id}/features/"
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as cl:
        conns = [RawConnection(base, token) if client_kind == "raw" else HttpxConnection(cl)
                 for _ in range(clients)]

        async def client(k: int) -> None:
            rng = random.Random(1000 + k)
            mine = subsets[k]
            i = 0
            start = time.monotonic() + (rng.random() / rate if rate else 0)
            while time.monotonic() < deadline:
                fid = mine[i % len(mine)]
                i += 1
                body = {"properties": {"name": f"Edited {k}-{i}",
                                       "category": c.CATEGORIES[rng.randrange(len(c.CATEGORIES))],
                                       "value": round(rng.random() * 1000, 2)}}
                if rate:
                    t0 = start + (i - 1) / rate  # scheduled send time
                    if t0 >= deadline:
                        break
                    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
                else:
                    t0 = time.monotonic()
                try:
                    status, headers = await conns[k].request(
                        "PATCH", url + fid, json.dumps(body).encode(),
                        {"If-Match": f'"{versions[fid]}"'})
                except Exception as exc:  # noqa: BLE001
                    counts["errors"] += 1
                    key = type(exc).__name__
                    errors[key] = errors.get(key, 0) + 1
                    continue
                ms = (time.monotonic() - t0) * 1000
                lat.append((t0, ms))
                if status == 200:
                    counts["ok"] += 1
                    versions[fid] = int(headers["etag"].strip('"'))
                elif status == 412:
                    counts["412"] += 1
                    etag = headers.get("etag")
                    if etag:
                        versions[fid] = int(etag.strip('"'))
                else:
                    counts["errors"] += 1
                    key = f"HTTP {status}"
                    errors[key] = errors.get(key, 0) + 1

        async def warm(k: int) -> None:  # one unmeasured edit each: connections, caches
            fid = subsets[k][-1]
            status, headers = await conns[k].request(
                "PATCH", url + fid, json.dumps({"properties": {"warm-up": k}}).encode(),
                {"If-Match": f'"{versions[fid]}"'})
            if status == 200:
                versions[fid] = int(headers["etag"].strip('"'))

        await asyncio.gather(*(warm(k) for k in range(clients)))
        spread = sorted(connections_by_pid(base).values(), reverse=True)
        print("  connections per server process:", spread)
        # the load client's own collector pauses are not the server's latency: off while
        # timing (bounded run), as in realtime_latency.py
        gc.collect()
        gc.disable()
        deadline = time.monotonic() + duration
        started = time.monotonic()
        try:
            await asyncio.gather(*(client(k) for k in range(clients)))
        finally:
            gc.enable()
            for conn in conns:
                conn.close()
        elapsed = time.monotonic() - started
    ms_sorted = sorted(ms for _, ms in lat)
    return {"lat": lat, "sorted": ms_sorted, "elapsed": elapsed, "started": started,
            "spread": spread,
            "errors_by_kind": errors, **counts}


def connections_by_pid(base: str) -> dict[int, int]:
    """Established connections to the server port, by the process that accepted them."""
    port = base.rsplit(":", 1)[1]
    counts: dict[int, int] = {}
    for conn in psutil.net_connections("tcp"):
        if conn.status == "ESTABLISHED" and conn.laddr and conn.laddr.port == int(port) and conn.pid:
            counts[conn.pid] = counts.get(conn.pid, 0) + 1
    return counts


def db_snapshots(data_dir: Path, since_version: int = 0) -> int:
    con = sqlite3.connect(f"file:{data_dir / 'waymark.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM snapshots WHERE version > ?",
                           (since_version,)).fetchone()[0]
    finally:
        con.close()


def layer_version(data_dir: Path) -> int:
    con = sqlite3.connect(f"file:{data_dir / 'waymark.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute("SELECT max(version) FROM layers WHERE staging = 0").fetchone()[0]
    finally:
        con.close()


def run_phase(name: str, data_dir: Path, args, extra_env: dict[str, str]) -> dict:
    print(f"\n== phase {name} ({extra_env or 'defaults'})")
    extra_env = dict(extra_env)
    proto_app = extra_env.pop("proto_app", None)
    rate = float(extra_env.pop("rate", 0) or 0)
    with c.waymark_server(data_dir, workers=args.workers, log=data_dir / f"server-{name}.log",
                          proto_app=proto_app, WAYMARK_SESSION_STORE="file",
                          WAYMARK_RATE_LIMITS="write=off",  # measure edits, not the limiter
                          **extra_env) as (base, proc):
        token = c.login_token(base, EMAIL, PASSWORD)
        map_id, layer_id, versions = discover(base, token)
        print(f"layer {layer_id}: {len(versions):,} features")
        pub = publish_first(base, token, map_id, layer_id)
        print(f"GET data_url (publish) took {pub:.2f}s")
        v0 = layer_version(data_dir)
        snaps0 = db_snapshots(data_dir, v0)
        pids = c.server_pids(proc)
        sampler = CpuSampler(pids)
        sampler.start()
        spies = []
        if args.profile_dir:  # py-spy on each granian worker (leaf processes) during the load
            out_dir = Path(args.profile_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            spy = shutil.which("py-spy") or str(c.VENV_BIN / "py-spy")
            for pid in pids:
                if psutil.Process(pid).children():
                    continue
                spies.append(subprocess.Popen(
                    [spy, "record", "-r", "100", "-d", str(int(args.duration)), "-f", "raw",
                     "--gil" if args.profile_gil else "--nonblocking",
                     "-o", str(out_dir / f"{name}-{pid}.txt"), "-p", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client_proc = psutil.Process()
        cpu0 = client_proc.cpu_times()
        server0 = server_cpu_seconds(pids)
        jiffies0 = c.cpu_jiffies()
        res = asyncio.run(load(base, token, map_id, layer_id, versions, args.clients,
                               args.duration, rate=rate, client_kind=args.client))
        cpu1 = client_proc.cpu_times()
        server1 = server_cpu_seconds(pids)
        jiffies1 = c.cpu_jiffies()
        res["steal_pct"] = c.steal_pct(jiffies0, jiffies1)
        sampler.stop.set()
        sampler.join()
        time.sleep(0.5)
        res["snapshots_during"] = db_snapshots(data_dir, v0) - snaps0
        res["client_cpu_pct"] = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / res["elapsed"] * 100
        res["server_cpu"] = sampler.samples
        # server CPU per request (edits, 412s and errors): the cost of the edit path itself,
        # comparable across loaded runs where latency is not (the background build included)
        res["server_cpu_ms"] = (server1 - server0) * 1000 / max(len(res["sorted"]), 1)
        res["pids"] = pids
        for spy_proc in spies:
            try:
                spy_proc.wait(30)
            except subprocess.TimeoutExpired:
                c.stop_pid_tree(spy_proc)
    s = res["sorted"]
    res["summary"] = {
        "count": len(s), "rps": len(s) / res["elapsed"], "p50": c.percentile(s, 50),
        "p95": c.percentile(s, 95), "p99": c.percentile(s, 99), "max": s[-1] if s else float("nan")}
    # latency per second of the run, to see spikes that line up with snapshot builds
    buckets: dict[int, list[float]] = {}
    for t0, ms in res["lat"]:
        buckets.setdefault(int(t0 - res["started"]), []).append(ms)
    res["per_second"] = [(sec, len(v), c.percentile(sorted(v), 99), max(v))
                         for sec, v in sorted(buckets.items())]
    sm = res["summary"]
    print(f"{name}: {sm['count']} edits ({sm['rps']:.0f}/s), ok {res['ok']}, 412 {res['412']}, "
          f"errors {res['errors']} {res['errors_by_kind'] or ''}; p50 {sm['p50']:.1f} "
          f"p95 {sm['p95']:.1f} p99 {sm['p99']:.1f} max {sm['max']:.1f} ms; snapshots built "
          f"during run: {res['snapshots_during']}; client CPU {res['client_cpu_pct']:.0f} %; "
          f"CPU steal {res['steal_pct']:.1f} %; server CPU {res['server_cpu_ms']:.2f} ms/edit")
    print("  per-second: " + " ".join(f"[{sec}s n={n} p99={p99:.0f} max={mx:.0f}]"
                                       for sec, n, p99, mx in res["per_second"]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=100_000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--phases", default="default,no-publish,paced")
    ap.add_argument("--rate", type=float, default=4.0,
                    help="edits/s per client in the paced-R/s phase (open loop)")
    ap.add_argument("--profile-dir", default=None,
                    help="record py-spy raw profiles of the granian workers into this dir")
    ap.add_argument("--profile-gil", action="store_true", help="py-spy --gil (GIL holder only)")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="load client for the timed edits: raw asyncio HTTP/1.1 (default) or httpx")
    ap.add_argument("--max-steal", type=float, default=5.0,
                    help="a phase run with more CPU steal (%%) is listed, not judged, and run "
                         "again (at most twice)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    args.duration = min(args.duration, 120)  # bounded

    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-update-"))
    data_dir = tmp / "data"
    phases = {"default": {}, "no-publish": {"WAYMARK_SNAPSHOT_DELAY_MS": "600000"},
              "paced": {"rate": str(args.rate)},
              "paced-no-publish": {"rate": str(args.rate), "WAYMARK_SNAPSHOT_DELAY_MS": "600000"},
              # prototypes of the proposed fix (bench/proto/), not shipped code:
              "proto-writegate": {"proto_app": "asgi_writegate:app"},
              "proto-writegate-no-publish": {"proto_app": "asgi_writegate:app",
                                             "WAYMARK_SNAPSHOT_DELAY_MS": "600000"}}
    runs: list[tuple[str, dict]] = []  # every run of every phase, in order
    judged: dict[str, dict] = {}  # per phase: its first quiet run, else its least noisy one
    try:
        import_layer(data_dir, args.features)
        for name in args.phases.split(","):
            tries = []
            for _ in range(3):
                tries.append(run_phase(name, data_dir, args, phases[name]))
                runs.append((name, tries[-1]))
                if tries[-1]["steal_pct"] <= args.max_steal:
                    break
                print(f"  CPU steal {tries[-1]['steal_pct']:.1f} % > {args.max_steal:g} %: "
                      "not judged, run again")
            quiet = [r for r in tries if r["steal_pct"] <= args.max_steal]
            judged[name] = quiet[0] if quiet else min(tries, key=lambda r: r["steal_pct"])
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    headers = ["phase", "edits", "edits/s", "ok", "412", "errors", "p50 ms", "p95 ms", "p99 ms",
               "max ms", "snapshots built during run", "CPU steal %",
               f"p99 ≤ {TARGET_P99_MS:.0f} ms"]
    rows = []
    for name, r in runs:
        sm = r["summary"]
        verdict = "PASS" if sm["p99"] <= TARGET_P99_MS and r["errors"] == 0 else "FAIL"
        if judged[name] is not r:
            verdict = "not judged (steal)"
        elif r["steal_pct"] > args.max_steal:
            verdict += " (no quiet run)"
        rows.append([name, sm["count"], f"{sm['rps']:.0f}", r["ok"], r["412"], r["errors"],
                     f"{sm['p50']:.1f}", f"{sm['p95']:.1f}", f"{sm['p99']:.1f}", f"{sm['max']:.0f}",
                     r["snapshots_during"], f"{r['steal_pct']:.1f}", verdict])
    print()
    c.print_table(headers, rows)
    if not args.no_results:
        lines = [
            f"## 3. Edit latency: {args.clients} concurrent single-feature PATCHes on a "
            f"{args.features:,}-feature layer", "",
            "Command: `" + c.command_prefix() + ".venv/bin/python bench/update_p99.py" + (
                f" --phases {args.phases}" if args.phases != "default,no-publish,paced" else "") + (
                f" --rate {args.rate:g}" if args.rate != 4.0 else "") + (
                f" --client {args.client}" if args.client != "raw" else "") + "`  ",
            f"Server: `waymark serve --workers {args.workers} --no-job-worker`, default SQLite, "
            f"WAYMARK_DEMO_DATA=false. Load: {args.clients} asyncio clients ({args.client}) in one process, "
            f"back-to-back `PATCH .../features/{{fid}}` `{{\"properties\": {{...}}}}` with "
            f"`If-Match`, disjoint feature subsets, {args.duration:.0f} s per phase. Phase "
            "`default` = as shipped (background Publisher rebuilds the 100k layer while edits "
            "run), clients back to back (closed loop: the server's saturation throughput, "
            "latency = clients / throughput); `no-publish` = the same with "
            "WAYMARK_SNAPSHOT_DELAY_MS=600000 (no rebuild during the run); `paced` = as "
            f"shipped, each of the {args.clients} clients sending {args.rate:g} edits/s on a fixed schedule "
            "(open loop; latency from the scheduled send time, so queueing is counted). A "
            f"run with more than {args.max_steal:g} % CPU steal is listed but not judged, and "
            "the phase runs again (at most twice).  ",
            c.notes_line(notes), "",
            c.md_table(headers, rows), ""]
        for name, r in runs:
            lines.append(f"`{name}` p99/max by second of the run (n, p99 ms, max ms): " + ", ".join(
                f"{sec}s {n}/{p99:.0f}/{mx:.0f}" for sec, n, p99, mx in r["per_second"]) +
                f"; client process CPU {r['client_cpu_pct']:.0f} %; CPU steal "
                f"{r['steal_pct']:.1f} %; connections per server "
                f"process {'/'.join(map(str, r['spread']))}.  ")
        c.update_results("update_p99", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
