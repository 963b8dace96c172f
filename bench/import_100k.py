"""Import a 100,000-point file with `waymark import` and measure wall time + peak RSS,
for every import format (one row each): the same points written as GeoJSON, CSV, GPX, KML,
KMZ, zipped Shapefile, GeoPackage and FlatGeobuf by Waymark's own writers.

    .venv/bin/python bench/import_100k.py [--features 100000] [--runs 1] [--formats geojson,csv] [--keep]

Same code path as an operator's `waymark import FILE --owner EMAIL`: a fresh data dir,
`waymark migrate`, `waymark user create`, then the import CLI as a subprocess under
`/usr/bin/time -v` (psutil polling of the process tree as a fallback / cross-check).
Targets: <= 15 s wall, <= 600 MB peak RSS.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGET_S = 15.0
TARGET_MB = 600.0
EMAIL = "bench@example.org"
PASSWORD = "bench-password-123"
FORMATS = ("geojson", "csv", "gpx", "kml", "kmz", "shapefile", "gpkg", "fgb")
EXTENSIONS = {"shapefile": "zip"}


def convert(geojson: bytes, fmt: str) -> bytes:
    """The benchmark points in ``fmt``, written by Waymark's own exporter."""
    from waymark.formats import ExportLayer, read, write

    if fmt == "geojson":
        return geojson
    parsed = read(geojson, "geojson").layers[0]
    layer = ExportLayer("points", {}, [{"id": str(i), "geometry": f.geometry,
                                        "properties": f.properties}
                                       for i, f in enumerate(parsed.features)])
    return write([layer], fmt)


def poll_rss(pid: int, stop: threading.Event, out: dict) -> None:
    """Peak RSS of the process and its children, sampled every 20 ms."""
    peak = 0
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss
            for child in proc.children(recursive=True):
                try:
                    rss = max(rss, child.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out["peak"] = peak


def run_once(data_dir: Path, geojson: Path) -> dict:
    env = c.setup_data_dir(data_dir, EMAIL, PASSWORD)
    cmd = [c.WAYMARK, "import", str(geojson), "--owner", EMAIL]
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if gnu_time:
        cmd = [gnu_time, "-v", *cmd]
    stop, polled = threading.Event(), {}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=c.ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    poller = threading.Thread(target=poll_rss, args=(proc.pid, stop, polled))
    poller.start()
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        c.stop_pid_tree(proc)
        raise
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"import failed ({proc.returncode}):\n{stdout}\n{stderr}")
    result = {"wall_s": wall, "psutil_peak_mb": polled.get("peak", 0) / 2**20,
              "stdout": stdout.strip().splitlines()[-1] if stdout.strip() else ""}
    if gnu_time:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
        if m:
            result["time_peak_mb"] = int(m.group(1)) / 1024
        m = re.search(r"Elapsed \(wall clock\) time .*?: (?:(\d+):)?(\d+):([\d.]+)", stderr)
        if m:
            h, mnt, s = m.groups()
            result["time_wall_s"] = int(h or 0) * 3600 + int(mnt) * 60 + float(s)
        m = re.search(r"User time \(seconds\): ([\d.]+)", stderr)
        result["user_s"] = float(m.group(1)) if m else None
        m = re.search(r"System time \(seconds\): ([\d.]+)", stderr)
        result["sys_s"] = float(m.group(1)) if m else None
    db = data_dir / "waymark.db"
    result["db_mb"] = sum(p.stat().st_size for p in data_dir.glob("waymark.db*")) / 2**20 if db.exists() else 0
    m = re.search(r"imported (\d+) features", stdout)
    result["imported"] = int(m.group(1)) if m else None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help="comma-separated import formats (default: all)")
    ap.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()

    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-import-"))
    try:
        geojson = tmp / f"points-{args.features}.geojson"
        t0 = time.perf_counter()
        geojson.write_bytes(c.points_geojson(args.features))
        size_mb = geojson.stat().st_size / 2**20
        print(f"generated {geojson.name}: {size_mb:.1f} MB in {time.perf_counter() - t0:.1f}s")
        runs = []
        for fmt in args.formats.split(","):
            path = tmp / f"points-{args.features}.{EXTENSIONS.get(fmt, fmt)}"
            path.write_bytes(convert(geojson.read_bytes(), fmt))
            for i in range(args.runs):
                r = run_once(tmp / f"data-{fmt}-{i}", path)
                r["format"], r["run"], r["file_mb"] = fmt, i + 1, path.stat().st_size / 2**20
                print(f"{fmt} run {i + 1}: {r}")
                runs.append(r)
        rows = []
        for r in runs:
            peak = r.get("time_peak_mb") or r["psutil_peak_mb"]
            cpu = (r.get("user_s") or 0) + (r.get("sys_s") or 0)
            rows.append([r["format"], f"{r['file_mb']:.1f}", r["run"], r["imported"], f"{cpu:.2f}", f"{r['wall_s']:.2f}", f"{r.get('user_s') or 0:.2f}",
                         f"{r.get('sys_s') or 0:.2f}", f"{peak:.0f}", f"{r['psutil_peak_mb']:.0f}",
                         f"{r['db_mb']:.0f}",
                         "PASS" if r["wall_s"] <= TARGET_S else "FAIL",
                         "PASS" if peak <= TARGET_MB else "FAIL"])
        headers = ["format", "file MB", "run", "features", "CPU s", "wall s", "user s", "sys s", "peak RSS MB (time -v)",
                   "peak RSS MB (psutil)", "DB MB", f"wall ≤ {TARGET_S:.0f} s",
                   f"RSS ≤ {TARGET_MB:.0f} MB"]
        print()
        c.print_table(headers, rows)
        if not args.no_results:
            cmd = "`" + c.command_prefix() + ".venv/bin/python bench/import_100k.py" + (
                f" --formats {args.formats}" if args.formats != ",".join(FORMATS) else "") + (
                f" --features {args.features}" if args.features != 100_000 else "") + (
                f" --runs {args.runs}" if args.runs != 1 else "") + "`"
            body = "\n".join([
                f"## 1. Import {args.features:,} points (`waymark import`), every format", "",
                f"Command: {cmd}  ",
                f"Input: deterministic FeatureCollection, {args.features:,} Points with name, "
                f"category, value ({size_mb:.1f} MB of GeoJSON), also written by Waymark's "
                "exporter in each other format (one row per format). Measured: `/usr/bin/time -v waymark import "
                "FILE --owner EMAIL` on a fresh data dir (after `waymark migrate`, `waymark user "
                "create`); wall time of the whole CLI process including interpreter start; CPU s "
                "is user + sys of that process (on a machine shared with other work, the wall "
                "time grows with the load average while the CPU time does not).  ",
                c.notes_line(notes), "",
                c.md_table(headers, rows), ""])
            c.update_results("import_100k", body)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
