"""Memory of `waymark serve`: at idle, per open websocket viewer, and where it goes.

    .venv/bin/python bench/memory.py [--workers 2] [--viewers 1000] [--redis] [--no-results]

1. idle: `waymark serve --workers N` (job worker included, as `make run` starts it) on a
   fresh data dir with a small public map; a few requests of each kind (pages, API, a
   websocket), then the PSS of every process, read from its own metrics port
   (`waymark_process_pss_bytes{pid,role}`, from /proc/<pid>/smaps_rollup). Target ≤ 200 MB.
2. websockets: `--viewers` anonymous viewers (asyncio clients in this process) open the map's
   websocket; once all got their hello (and the server its presence traffic), PSS again;
   one edit must reach every viewer. Per viewer = (PSS with viewers - PSS before) / viewers.
   Target ≤ 64 KB. `--redis`: the same with WAYMARK_REDIS_URL (a redis-server started
   here; its own memory is reported apart).
3. where it goes: PSS added by importing each big package in a fresh interpreter (in the
   order the app imports them), and `python -X importtime` of the app worker module.

Run it with a production install (`uv sync --no-dev` into a venv, `--python` to pick it): the
development venv also holds test-only packages (pydantic through schemathesis) that a
worker imports when present.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

EMAIL = "bench@example.org"
PASSWORD = "bench-password-123"
PACKAGES = ["asyncio", "granian", "litestar", "sqlalchemy.orm", "jinja2", "prometheus_client",
            "structlog", "obstore", "cryptography.hazmat.primitives.ciphers.aead", "huey",
            "waymark.app"]


def scrape(metrics_url: str) -> list[tuple[str, dict[str, str], float]]:
    import httpx

    out = []
    for line in httpx.get(metrics_url, timeout=30).text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if m and not line.startswith("#"):
            out.append((m.group(1), dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")),
                        float(m.group(3))))
    return out


def processes(metrics_url: str) -> list[dict]:
    """One row per process of the server: pid, role, PSS and RSS in MB."""
    rows: dict[str, dict] = {}
    for name, labels, value in scrape(metrics_url):
        if name in ("waymark_process_pss_bytes", "process_resident_memory_bytes"):
            row = rows.setdefault(labels["pid"], {"pid": labels["pid"], "role": labels["role"]})
            row["pss" if name.startswith("waymark") else "rss"] = value / 2**20
    order = {"serve": 0, "master": 1, "worker": 2, "jobs": 3}
    return sorted(rows.values(), key=lambda r: (order.get(r["role"], 9), r["pid"]))


def total_pss(metrics_url: str) -> float:
    return sum(r["pss"] for r in processes(metrics_url))


def settle(metrics_url: str, rounds: int = 10, pause: float = 1.0) -> float:
    """PSS once it stops moving (two readings within 0.5 MB), or the last of `rounds`."""
    last = total_pss(metrics_url)
    for _ in range(rounds):
        time.sleep(pause)
        now = total_pss(metrics_url)
        if abs(now - last) < 0.5:
            return now
        last = now
    return last


class Viewer:
    """One websocket viewer that reads everything it is sent, as a browser does (unread
    messages would pile up in the server's send buffers and count as its memory)."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws
        self.got_edit = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        import websockets

        try:
            async for raw in self.ws:
                if json.loads(raw)["type"] == "edit":
                    self.got_edit.set()
        except websockets.ConnectionClosed:
            pass


async def open_viewers(ws_url: str, n: int) -> tuple[list[Viewer], float]:
    import websockets

    viewers = []
    started = time.monotonic()
    for i in range(0, n, 50):  # in batches: a burst of 1,000 handshakes is not the point
        batch = await asyncio.gather(*(websockets.connect(ws_url, open_timeout=60,
                                                          max_size=2**22)
                                       for _ in range(min(50, n - i))))
        for ws in batch:
            while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "hello":
                pass
            viewers.append(Viewer(ws))
    return viewers, time.monotonic() - started


def warm_up(base: str, map_id: str, layer_id: str) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        for path in ("/", f"/m/{map_id}", f"/api/v1/maps/{map_id}",
                     f"/api/v1/maps/{map_id}/layers/{layer_id}/features", "/readyz"):
            for _ in range(5):
                client.get(path).raise_for_status()


def where_it_goes(python: str, tmp: Path) -> tuple[list[list[object]], list[list[object]]]:
    script = (
        "import importlib, json, sys\n"
        "def pss():\n"
        "    for l in open('/proc/self/smaps_rollup'):\n"
        "        if l.startswith('Pss:'): return int(l.split()[1]) / 1024\n"
        "out, prev = [], pss()\n"
        "out.append(['python itself', round(prev, 1), len(sys.modules)])\n"
        f"for m in {PACKAGES!r}:\n"
        "    importlib.import_module(m); now = pss()\n"
        "    out.append([m, round(now - prev, 1), len(sys.modules)]); prev = now\n"
        "print(json.dumps(out))\n")
    env = c.waymark_env(tmp / "imports")
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env,
                          check=True, cwd=tmp)
    by_package = json.loads(done.stdout.strip().splitlines()[-1])
    timed = subprocess.run([python, "-X", "importtime", "-c", "import waymark.app"],
                           capture_output=True, text=True, env=env, check=True, cwd=tmp)
    self_us: dict[str, int] = {}
    count: dict[str, int] = {}
    for line in timed.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            top = m.group(2).split(".")[0]
            self_us[top] = self_us.get(top, 0) + int(m.group(1))
            count[top] = count.get(top, 0) + 1
    slowest = sorted(self_us.items(), key=lambda kv: -kv[1])[:10]
    return by_package, [[name, count[name], f"{us / 1000:.0f}"] for name, us in slowest]


def run(args: argparse.Namespace, tmp: Path) -> dict:
    import httpx

    python = args.python or sys.executable
    waymark = str(Path(python).parent / "waymark")
    env_extra: dict[str, str] = {}
    redis_proc = None
    if args.redis:
        from cache_rps import start_redis

        redis_proc, env_extra["WAYMARK_REDIS_URL"] = start_redis(tmp)
    data_dir = tmp / "data"
    env = c.setup_data_dir(data_dir, EMAIL, PASSWORD)
    metrics_port, port = c.free_port(), c.free_port()
    env.update(env_extra, WAYMARK_METRICS_PORT=str(metrics_port), WAYMARK_LOG_LEVEL="warning",
               WAYMARK_RATE_LIMITS="anon_read=off")
    base, metrics_url = f"http://{c.LOOPBACK}:{port}", f"http://{c.LOOPBACK}:{metrics_port}/metrics"
    result: dict = {"workers": args.workers, "viewers": args.viewers,
                    "backend": "Redis" if args.redis else "embedded"}
    with ExitStack() as stack, open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen([waymark, "serve", "--host", c.LOOPBACK, "--port", str(port),
                                 "--workers", str(args.workers), "--no-backup"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                                start_new_session=True)
        stack.callback(c.stop_pid_tree, proc)
        if redis_proc is not None:
            stack.callback(redis_proc.terminate)
        c.wait_http(base + "/readyz", timeout=180, proc=proc)
        deadline = time.monotonic() + 180
        while sum(r["role"] == "worker" for r in processes(metrics_url)) < args.workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not all start")
            time.sleep(0.5)
        client = httpx.Client(base_url=base, timeout=60)
        stack.callback(client.close)
        r = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        r.raise_for_status()
        headers = {"X-CSRF-Token": r.json()["csrf_token"]}
        m = client.post("/api/v1/maps", json={"title": "Memory", "visibility": "public"},
                        headers=headers).json()
        map_id, layer_id = m["id"], m["layers"][0]["id"]
        for i in range(20):
            client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features", headers=headers,
                        json={"geometry": {"type": "Point", "coordinates": [i, i / 2]},
                              "properties": {"name": f"place {i}"}}).raise_for_status()
        warm_up(base, map_id, layer_id)
        ws_url = f"ws://{c.LOOPBACK}:{port}/api/v1/maps/{map_id}/ws"

        async def one_viewer() -> None:  # the websocket code paths have run once too
            viewers, _ = await open_viewers(ws_url, 4)
            for viewer in viewers:
                await viewer.ws.close()

        asyncio.run(one_viewer())
        result["idle"] = processes(metrics_url)
        result["idle_total"] = settle(metrics_url)
        result["idle"] = processes(metrics_url)
        if args.redis:
            result["redis_rss"] = _rss_mb(redis_proc.pid)

        async def with_viewers() -> dict:
            viewers, took = await open_viewers(ws_url, args.viewers)
            # the connection burst started helper threads (anyio's pool keeps an idle one
            # 10 s): measure what the open viewers hold, once those are gone
            await asyncio.sleep(12)
            loaded = await asyncio.to_thread(settle, metrics_url)
            per_pid = {labels["pid"]: value for name, labels, value in scrape(metrics_url)
                       if name == "waymark_ws_connections"}
            rows = processes(metrics_url)
            redis_rss = _rss_mb(redis_proc.pid) if redis_proc is not None else None
            r = client.post(f"/api/v1/maps/{map_id}/layers/{layer_id}/features",
                            headers=headers, json={"geometry": {"type": "Point",
                                                                "coordinates": [1, 1]}})
            r.raise_for_status()
            try:
                await asyncio.wait_for(asyncio.gather(*(v.got_edit.wait() for v in viewers)),
                                       60)
            except TimeoutError:
                pass  # reported: fewer than all got it
            await asyncio.gather(*(v.ws.close() for v in viewers))
            return {"loaded_total": loaded, "loaded": rows, "connect_seconds": took,
                    "per_pid": per_pid, "redis_rss_loaded": redis_rss,
                    "edit_reached": sum(v.got_edit.is_set() for v in viewers)}

        result.update(asyncio.run(with_viewers()))
    result["per_viewer_kb"] = (result["loaded_total"] - result["idle_total"]) * 1024 / args.viewers
    return result


def _install_kind(python: str) -> str:
    dev = subprocess.run([python, "-c", "import pydantic"], capture_output=True,
                         check=False).returncode == 0
    return ("the development venv (test-only packages such as pydantic are loaded by the "
            "workers)" if dev else "a production install (`uv sync --no-dev`)")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--viewers", type=int, default=1000)
    ap.add_argument("--redis", action="store_true", help="with WAYMARK_REDIS_URL")
    ap.add_argument("--python", help="the interpreter of the install to measure "
                                     "(default: this one)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    if args.redis and not shutil.which("redis-server"):
        sys.exit("--redis needs redis-server: apt-get install -y redis-server")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.viewers * 2 + 256)), hard))
    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-memory-"))
    try:
        result = run(args, tmp)
        by_package, slowest = where_it_goes(args.python or sys.executable, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    idle_rows = [[r["role"], r["pid"], f"{r['pss']:.1f}", f"{r['rss']:.1f}"]
                 for r in result["idle"]]
    loaded_rows = [[r["role"], r["pid"], f"{r['pss']:.1f}", f"{r['rss']:.1f}",
                    f"{result['per_pid'].get(r['pid'], 0):.0f}"] for r in result["loaded"]]
    print(f"\nidle, {result['backend']}, --workers {args.workers}: "
          f"{result['idle_total']:.1f} MB PSS")
    c.print_table(["role", "pid", "PSS MB", "RSS MB"], idle_rows)
    print(f"\n{args.viewers} viewers: {result['loaded_total']:.1f} MB PSS, "
          f"{result['per_viewer_kb']:.1f} KB per viewer; the edit reached "
          f"{result['edit_reached']} of {args.viewers}")
    c.print_table(["role", "pid", "PSS MB", "RSS MB", "websockets"], loaded_rows)
    print("\nPSS added by each package, imported in order in a fresh interpreter:")
    c.print_table(["package", "PSS MB", "modules loaded"], by_package)
    print("\nimport time of waymark.app, by top-level package (self time):")
    c.print_table(["package", "modules", "ms"], slowest)
    if args.no_results:
        return
    redis_note = ""
    if args.redis:
        redis_note = (f" redis-server itself: {result['redis_rss']:.1f} MB RSS idle, "
                      f"{result['redis_rss_loaded']:.1f} MB with the viewers.")
    body = "\n".join([
        f"## Memory: idle and per websocket viewer ({result['backend']}, "
        f"`--workers {args.workers}`)",
        "",
        f"`{c.command_prefix()}bench/memory.py --workers {args.workers} --viewers "
        f"{args.viewers}{' --redis' if args.redis else ''}` ({c.notes_line(notes)}); "
        f"measured install: {_install_kind(args.python or sys.executable)}.",
        "",
        f"**Idle: {result['idle_total']:.1f} MB PSS** (target ≤ 200 MB), per process:",
        "",
        c.md_table(["role", "pid", "PSS MB", "RSS MB"], idle_rows),
        "",
        f"**{args.viewers} websocket viewers: {result['loaded_total']:.1f} MB PSS, "
        f"{result['per_viewer_kb']:.1f} KB per viewer** (target ≤ 64 KB); connecting took "
        f"{result['connect_seconds']:.1f} s; one edit then reached {result['edit_reached']} "
        f"of {args.viewers}.{redis_note}",
        "",
        c.md_table(["role", "pid", "PSS MB", "RSS MB", "websockets"], loaded_rows),
        "",
        "Where the memory goes: PSS added by importing each package (in this order, in a "
        "fresh interpreter of the same install):",
        "",
        c.md_table(["package", "PSS MB", "modules loaded"], by_package),
        "",
        "Import time of `waymark.app` by top-level package (`python -X importtime`, self "
        "time, slowest 10):",
        "",
        c.md_table(["package", "modules", "ms"], slowest),
    ])
    c.update_results(f"memory-{result['backend'].lower()}", body)


if __name__ == "__main__":
    main()
