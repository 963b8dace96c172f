"""Reads/s and edits/s (with p99) for 1, 2 and 3 app nodes on PostgreSQL, and one SQLite node
beside them, in one run (issue 15, item 6).

    .venv/bin/python bench/cluster_scale.py [--duration 10] [--connections 32]

Each configuration is a fresh set of `waymark serve --workers 1 --no-job-worker` processes,
each with its own data dir, behind HAProxy (rendered by `waymark deploy haproxy-config`),
sharing one PostgreSQL, one Redis (sessions, cache, real time), one object directory and
one master key file. The SQLite row is the embedded default: one node, SQLite, no Redis.

Data: a public 1,000-point layer (reads) and four 500-point layers (edits), imported once
per configuration. Load, through HAProxy, each phase after a 2 s warm-up:
  reads  - `wrk -t2 -cC -dD --latency -H 'Accept-Encoding: gzip'` on the public layer's
           snapshot_url, anonymously (the embed / shared-link hot path);
  edits  - `wrk` with a Lua script: `PATCH …/features/{id}` of a random feature of the four
           edit layers, `{"properties": {...}}`, Bearer token (no If-Match: no 412s).
Rate limits are off. PostgreSQL is a throwaway server with fsync off (tests/servers.py):
write figures are an upper bound for a durable server.

Everything (load generator, HAProxy, PostgreSQL, Redis, the nodes) shares the machine's
cores: read the table as how the same 2 cores behave with more processes, and the analysis
in RESULTS.md for what it means at 10 and 50 nodes.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as c
from snapshot_wrk import parse_wrk
from tests.integration.deploy_support import start_haproxy
from tests.redis_servers import start_redis
from tests.servers import start_postgres_server

from waymark.storage.keys_provider import LocalKeyFile

CONFIGS = [("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 3)]
EDIT_LAYERS, EDIT_FEATURES = 4, 500
LUA = """
local paths = {%s}
local body = '{"properties": {"bench": "cluster_scale", "n": 1}}'
request = function()
  return wrk.format("PATCH", paths[math.random(#paths)], {
    ["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}, body)
end
"""


def _points(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return json.dumps({"type": "FeatureCollection", "features": [
        c.point_feature(rng, i) for i in range(n)]}).encode()


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes and their children."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


@contextmanager
def nodes(root: Path, n: int, env: dict[str, str]) -> Iterator[list[str]]:
    """n app nodes (own data dirs) behind HAProxy; yields [load balancer URL, *node URLs]."""
    procs, urls = [], []
    with ExitStack() as stack:
        for i in range(n):
            port = c.free_port()
            data = root / f"node{i + 1}"
            node_env = c.waymark_env(data, **env)
            log = stack.enter_context(open(root / f"node{i + 1}.log", "wb"))
            proc = subprocess.Popen([c.WAYMARK, "serve", "--host", c.LOOPBACK, "--port",
                                     str(port), "--workers", "1", "--no-job-worker",
                                     "--no-migrate", "--no-backup"], env=node_env, cwd=c.ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            stack.callback(c.stop_pid_tree, proc)
            urls.append((f"node{i + 1}", port))
        for (_, port), proc in zip(urls, procs):
            c.wait_http(f"http://{c.LOOPBACK}:{port}/readyz", 120, proc)
        lb_port = c.free_port()
        plan = root / "plan.toml"
        plan.write_text(f'state_dir = "{root / "state"}"\nhaproxy_socket = "{root / "lb.sock"}"\n'
                        f'frontend_url = "http://{c.LOOPBACK}:{lb_port}"\n' + "".join(
                            f'[[instances]]\nname = "{name}"\nport = {port}\n'
                            for name, port in urls))
        haproxy = start_haproxy(root, plan, lb_port, "--rate-limit", "10000000",
                                "--conn-limit", "100000")
        stack.callback(haproxy.stop)
        lb = f"http://{c.LOOPBACK}:{lb_port}"
        c.wait_http(lb + "/readyz", 60)
        yield [lb, *(f"http://{c.LOOPBACK}:{p}" for _, p in urls)]


def setup_data(lb: str) -> tuple[str, list[str], str]:
    """(snapshot path, edit feature paths, token) through the load balancer."""
    with httpx.Client(base_url=lb, timeout=120) as http:
        r = http.post("/api/v1/auth/signup", json={"email": f"b{time.time_ns()}@example.org",
                                                   "password": "bench-password-123"})
        r.raise_for_status()
        cookie = r.headers["set-cookie"].split(";", 1)[0]
        r = http.post("/api/v1/tokens", json={"name": "bench", "scope": "write"},
                      headers={"Cookie": cookie, "X-CSRF-Token": r.json()["csrf_token"]})
        r.raise_for_status()
        token = r.json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        m = http.post("/api/v1/maps", json={"title": "bench", "visibility": "public"}).json()
        read_layer = m["layers"][0]["id"]
        base = f"/api/v1/maps/{m['id']}/layers"
        http.post(f"{base}/{read_layer}/import?filename=r.geojson",
                  content=_points(1000, 1)).raise_for_status()
        http.get(f"{base}/{read_layer}/data").raise_for_status()  # publish
        snapshot = http.get(f"{base}/{read_layer}").json()["snapshot_url"]
        edits = []
        for i in range(EDIT_LAYERS):
            layer = http.post(f"/api/v1/maps/{m['id']}/layers", json={"name": f"e{i}"}).json()["id"]
            http.post(f"{base}/{layer}/import?filename=e.geojson",
                      content=_points(EDIT_FEATURES, 10 + i)).raise_for_status()
            ids = [f["id"] for f in http.get(f"{base}/{layer}/features",
                                             params={"limit": EDIT_FEATURES}).json()["features"]]
            edits += [f"{base}/{layer}/features/{fid}" for fid in ids]
    return snapshot, edits, token


def wrk(url: str, duration: int, connections: int, script: Path | None = None) -> dict:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        args += ["-s", str(script)]
    else:
        args += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=duration + 60,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}")
    return parse_wrk(out.stdout)


def measured(url: str, args: argparse.Namespace, groups: dict[str, list[int]],
             script: Path | None = None) -> tuple[dict, dict[str, float]]:
    """One wrk run after a 2 s warm-up; with the CPU ms per request each group used."""
    wrk(url, 2, args.connections, script)
    before = {name: tree_cpu(pids) for name, pids in groups.items()}
    result = wrk(url, args.duration, args.connections, script)
    done = max(result["requests"], 1)
    return result, {name: (tree_cpu(pids) - before[name]) * 1000 / done
                    for name, pids in groups.items()}


def measure(root: Path, engine: str, n: int, env: dict[str, str], args: argparse.Namespace,
            shared: dict[str, list[int]]) -> list[object]:
    with nodes(root, n, env) as (lb, *_):
        snapshot, edits, token = setup_data(lb)
        script = root / "edit.lua"
        script.write_text(LUA % (",".join(json.dumps(p) for p in edits), token))
        serve_pids = [p.pid for p in psutil.Process().children()
                      if "serve" in " ".join(p.cmdline())]
        groups = {"nodes": serve_pids, **shared}
        steal0 = c.cpu_jiffies()
        reads, read_cpu = measured(lb + snapshot, args, groups)
        edits_res, edit_cpu = measured(lb + edits[0], args, groups, script)
        steal = c.steal_pct(steal0, c.cpu_jiffies())
    row = [f"{engine}, {n} node{'s' if n > 1 else ''}", f"{reads['rps']:.0f}",
           f"{reads['p99']:.1f}", f"{read_cpu['nodes']:.2f}", f"{read_cpu.get('postgres', 0):.2f}",
           f"{edits_res['rps']:.0f}", f"{edits_res['p99']:.1f}", f"{edit_cpu['nodes']:.2f}",
           f"{edit_cpu.get('postgres', 0):.2f}", reads["non2xx"] + edits_res["non2xx"],
           f"{steal:.0f}"]
    print(" | ".join(str(x) for x in row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    notes = c.machine_notes()
    rows = []
    with tempfile.TemporaryDirectory(prefix="waymark-bench-cluster-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        LocalKeyFile(root / "master.key")
        common = {"WAYMARK_MASTER_KEY_FILE": str(root / "master.key"),
                  "WAYMARK_OBJECT_STORE_URL": f"file://{root / 'objects'}",
                  "WAYMARK_RATE_LIMITS": "anon_read=off,write=off,signup=off,upload=off",
                  "WAYMARK_LOG_LEVEL": "warning", "WAYMARK_METRICS_PORT": "0",
                  "WAYMARK_ACCESS_LOG_FLUSH_MS": "200", "WAYMARK_SNAPSHOT_DELAY_MS": "1000"}
        pg = start_postgres_server()
        stack.callback(pg.stop)
        redis = start_redis(str(root))
        stack.callback(redis.stop)
        for engine, n in CONFIGS:
            run_root = root / f"{engine}-{n}"
            run_root.mkdir()
            if engine == "SQLite":
                env = {**common, "WAYMARK_DATABASE_URL": f"sqlite:///{run_root / 'waymark.db'}"}
            else:
                env = {**common, "WAYMARK_REDIS_URL": redis.url,
                       "WAYMARK_DATABASE_URL": pg.create_database(f"bench_{n}")}
            c.run_cli(["migrate"], c.waymark_env(run_root / "migrate", **env))
            postmaster = int(Path(pg.data_dir, "postmaster.pid").read_text().split()[0])
            shared = {} if engine == "SQLite" else {"postgres": [postmaster]}
            rows.append(measure(run_root, engine, n, env, args, shared))
    headers = ["configuration", "reads/s", "read p99 ms", "node CPU ms/read",
               "PostgreSQL CPU ms/read", "edits/s", "edit p99 ms", "node CPU ms/edit",
               "PostgreSQL CPU ms/edit", "non-2xx", "CPU steal %"]
    c.print_table(headers, rows)
    body = "\n".join((
        "## Issue 15. Scaling out: 1, 2, 3 app nodes on PostgreSQL, one SQLite node beside",
        "",
        "Command: `" + c.command_prefix() + ".venv/bin/python bench/cluster_scale.py`  ",
        f"Load: through HAProxy, `wrk -t2 -c{args.connections} -d{args.duration}s --latency` "
        "on a public 1,000-point layer's snapshot_url (anonymous, gzip), then wrk PATCHing "
        f"random features of {EDIT_LAYERS} layers x {EDIT_FEATURES} points with a Bearer "
        "token; each node `waymark serve --workers 1 --no-job-worker`, own data dir; shared "
        "PostgreSQL (throwaway, fsync off), Redis, object dir and master key; SQLite row: one "
        "node, SQLite, no Redis. Each configuration freshly started, 2 s warm-up per phase. "
        "CPU ms per request: user + system CPU the app nodes (all their processes) and the "
        "PostgreSQL server used during the phase, divided by the requests served.  ",
        c.notes_line(notes),
        "",
        c.md_table(headers, rows),
    ))
    c.update_results("cluster_scale", body)


if __name__ == "__main__":
    main()
