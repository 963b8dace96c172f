"""Shared helpers for the benchmarks: machine notes, data generation, servers, RESULTS.md.

Everything here binds to 127.0.0.1 on OS-chosen free ports and stops only the processes it
started, by PID (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent
WAYMARK = str(VENV_BIN / "waymark")
LOOPBACK = "127.0.0.1"

CATEGORIES = ["cafe", "museum", "park", "viewpoint", "shop", "station", "school", "library",
              "pub", "monument"]


# ---- machine notes -------------------------------------------------------------------
def machine_notes() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import granian
        granian_version = granian.__version__
    except Exception:  # noqa: BLE001
        granian_version = "?"
    try:
        import litestar
        v = litestar.__version__
        litestar_version = f"{v.major}.{v.minor}.{v.patch}"
    except Exception:  # noqa: BLE001
        litestar_version = "?"
    wrk = shutil.which("wrk")
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    nginx_version = "-"
    if nginx:
        out = subprocess.run([nginx, "-v"], capture_output=True, text=True)
        nginx_version = (out.stderr or out.stdout).strip().split("/")[-1]
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "granian": granian_version,
        "litestar": litestar_version,
        "wrk": "4.1.0" if wrk else "-",
        "nginx": nginx_version,
        "code": code_version(),
        "loadavg before run": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def command_prefix() -> str:
    return f"BENCH_SRC={os.environ['BENCH_SRC']} " if os.environ.get("BENCH_SRC") else ""


def notes_line(notes: dict[str, str]) -> str:
    return ("Machine: " + ", ".join(f"{k} {v}" for k, v in notes.items()
                                    if k not in ("date",)) + f"; run {notes['date']}")


def cpu_jiffies() -> tuple[int, int]:
    """(total, steal) jiffies of the machine: steal is CPU time the hypervisor gave to others,
    the part of a run's noise no code here can cause or fix."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields), fields[7] if len(fields) > 7 else 0


def steal_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """CPU steal between two cpu_jiffies() readings, in % of all CPU time."""
    return 100 * (after[1] - before[1]) / max(1, after[0] - before[0])


# ---- RESULTS.md ----------------------------------------------------------------------
RESULTS_HEADER = """# Waymark benchmark results

Written by the scripts in `bench/` (see `bench/README.md`). Each script replaces its own
section (between its `<!-- bench:NAME -->` markers) on every run; the Findings section is
maintained by hand.

"""


def update_results(name: str, body: str) -> None:
    """Replace (or append) the section of RESULTS.md marked with bench:NAME."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = RESULTS.read_text() if RESULTS.exists() else RESULTS_HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        marker = "<!-- findings -->"
        if marker in text:
            text = text.replace(marker, block + "\n\n" + marker)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


# ---- data ----------------------------------------------------------------------------
def point_feature(rng: random.Random, i: int) -> dict:
    # Scattered over a 2x1 degree box around Edinburgh, 6-decimal coordinates.
    lon = round(-4.0 + rng.random() * 2.0, 6)
    lat = round(55.5 + rng.random() * 1.0, 6)
    return {"type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": f"Place {i:06d}", "category": CATEGORIES[i % len(CATEGORIES)],
                           "value": round(rng.random() * 1000, 2)}}


def line_feature(rng: random.Random, i: int, vertices: int = 20) -> dict:
    lon = -4.0 + rng.random() * 2.0
    lat = 55.5 + rng.random() * 1.0
    coords = []
    for _ in range(vertices):
        lon += (rng.random() - 0.5) * 0.01
        lat += (rng.random() - 0.5) * 0.01
        coords.append([round(lon, 6), round(lat, 6)])
    return {"type": "Feature",
            "geometry": {"type": "LineString", "coordinates": coords},
            "properties": {"name": f"Route {i:04d}", "category": "route",
                           "value": round(rng.random() * 50, 2),
                           "description": "A walking route through the old town and along "
                                          "the water of Leith, with a few steep steps.",
                           "surface": rng.choice(["paved", "gravel", "dirt"]),
                           "difficulty": rng.randint(1, 5)}}


def points_geojson(n: int, seed: int = 42) -> bytes:
    """A deterministic FeatureCollection of n points (name, category, value)."""
    rng = random.Random(seed)
    feats = [point_feature(rng, i) for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": feats},
                      separators=(",", ":")).encode()


def mixed_geojson(n: int, lines_every: int = 10, seed: int = 7) -> bytes:
    """n features: points with a few extra properties, every Nth one a 20-vertex line."""
    rng = random.Random(seed)
    feats = []
    for i in range(n):
        if i % lines_every == lines_every - 1:
            feats.append(line_feature(rng, i))
        else:
            f = point_feature(rng, i)
            f["properties"].update({
                "address": f"{rng.randint(1, 200)} {rng.choice(['High', 'Rose', 'George', 'Princes'])} Street",
                "opening_hours": "Mo-Fr 09:00-17:00; Sa 10:00-16:00",
                "website": f"https://example.org/place/{i}",
                "rating": rng.randint(1, 5)})
            feats.append(f)
    return json.dumps({"type": "FeatureCollection", "features": feats},
                      separators=(",", ":")).encode()


# ---- processes -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


_PINNED_SRC: Path | None = None


def pinned_src() -> Path | None:
    """With BENCH_SRC=HEAD (or any git rev), benchmark that commit's src/ instead of the
    working tree (others edit src/ in parallel; a half-saved file must not break a run).
    The tree is exported once per process with `git archive` into a temp dir and put first
    on PYTHONPATH, ahead of the editable install."""
    global _PINNED_SRC
    rev = os.environ.get("BENCH_SRC")
    if not rev:
        return None
    if _PINNED_SRC is None:
        import atexit
        import tempfile
        dest = Path(tempfile.mkdtemp(prefix="waymark-bench-src-"))
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        atexit.register(shutil.rmtree, dest, True)
        _PINNED_SRC = dest / "src"
    return _PINNED_SRC


def code_version() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    if os.environ.get("BENCH_SRC"):
        return f"src/ of {os.environ['BENCH_SRC']} ({rev})"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                           capture_output=True, text=True).stdout.strip()
    return f"working tree at {rev}" + (" + uncommitted src/ changes" if dirty else "")


def waymark_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    src = pinned_src()
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    # Bytecode is cached outside the source tree (this box sets PYTHONDONTWRITEBYTECODE=1,
    # which would make every CLI run recompile everything; production has .pyc files).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.environ.get("BENCH_PYCACHE", "/tmp/waymark-bench-pycache")
    env.update({"WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_ENV": "dev", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    out = subprocess.run([WAYMARK, *args], env=env, input=stdin, capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"waymark {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def setup_data_dir(data_dir: Path, email: str, password: str) -> dict[str, str]:
    env = waymark_env(data_dir)
    run_cli(["migrate"], env)
    run_cli(["user", "create", email, "--name", "Bench", "--password-stdin"], env, stdin=password + "\n")
    return env


def stop_pid_tree(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (it forwards to its children), then clean up any
    descendants of it that are still alive, each by its own PID."""
    if proc.poll() is not None:
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    for child in children:
        try:
            child.wait(timeout=3)
        except psutil.TimeoutExpired:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        except psutil.NoSuchProcess:
            pass


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code < 500:
                return
        except Exception as exc:  # noqa: BLE001
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout}s: {last}")


@contextmanager
def waymark_server(data_dir: Path, workers: int = 2, job_worker: bool = False,
                   log: Path | None = None, proto_app: str | None = None,
                   **extra_env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`waymark serve` on a free loopback port; yields (base_url, process).

    proto_app="module:app" runs granian directly (same flags as `waymark serve`) on a
    prototype entry point from bench/proto/ instead (the database must be migrated)."""
    port = free_port()
    env = waymark_env(data_dir, **extra_env)
    if proto_app:
        env["PYTHONPATH"] = str(BENCH / "proto") + os.pathsep + env.get("PYTHONPATH", "")
        args = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", LOOPBACK,
                "--port", str(port), "--workers", str(workers), "--no-access-log", proto_app]
    else:
        args = [WAYMARK, "serve", "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]
        if not job_worker:
            args.append("--no-job-worker")
    logf = open(log or (data_dir / "server.log"), "wb")
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT)
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_http(base + "/healthz", 60, proc)
        yield base, proc
    finally:
        stop_pid_tree(proc)
        logf.close()


def server_pids(proc: subprocess.Popen) -> list[int]:
    try:
        return [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def login_token(base: str, email: str, password: str, scope: str = "write") -> str:
    """Log in over HTTP and create an API token with the session's CSRF token."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        csrf = r.json()["csrf_token"]
        r = c.post("/api/v1/tokens", json={"name": "bench", "scope": scope},
                   headers={"X-CSRF-Token": csrf})
        r.raise_for_status()
        return r.json()["token"]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[int(k)]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)
