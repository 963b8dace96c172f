"""Public layer GET (`data_url`), cached vs uncached, requests/s in one run.

    .venv/bin/python bench/cache_rps.py [--features 1000] [--duration 10] [--connections 32]

Starts one redis-server (loopback, free port, no persistence) and, twice,
`waymark serve --workers 2 --no-job-worker` with WAYMARK_REDIS_URL on it: once with
WAYMARK_API_CACHE=false (every request reads the snapshot from object storage) and once with
the two-level cache on (per-process LRU, then Redis). Same data dir, same public map with a
1,000-feature layer; `wrk -t2 -c32 --latency -H 'Accept-Encoding: gzip'` on the anonymous
`data_url`. Target: cached >= 3 x uncached. Updates only its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from snapshot_wrk import run_wrk, setup_layer

EMAIL = "bench@example.org"
PASSWORD = "bench-password-123"


def start_redis(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = c.free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", c.LOOPBACK, "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    return proc, f"redis://{c.LOOPBACK}:{port}/0"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        sys.exit("needs wrk and redis-server: apt-get install -y wrk redis-server")
    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-cache-"))
    redis, redis_url = start_redis(tmp)
    results = {}
    try:
        data_dir = tmp / "var"
        c.setup_data_dir(data_dir, EMAIL, PASSWORD)
        data_url = None
        for mode, cache in (("uncached", "false"), ("cached", "true")):
            with c.waymark_server(data_dir, workers=2, WAYMARK_REDIS_URL=redis_url,
                                  WAYMARK_API_CACHE=cache,
                                  WAYMARK_RATE_LIMITS="anon_read=off") as (base, _proc):
                if data_url is None:
                    _snap, data_url, _gz = setup_layer(base, args.features)
                run_wrk(base + data_url, 2, args.connections, args.threads, True)  # warm-up
                results[mode] = run_wrk(base + data_url, args.duration, args.connections,
                                        args.threads, True)
                print(mode, results[mode])
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = results["cached"]["rps"] / max(results["uncached"]["rps"], 0.001)
    rows = [[mode, f"{r['rps']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}", r.get("non2xx", 0)]
            for mode, r in results.items()]
    body = "\n".join([
        "## Public layer GET: cached vs uncached (Redis layer)",
        "",
        f"Command: `{c.command_prefix()}.venv/bin/python bench/cache_rps.py --features "
        f"{args.features} --duration {args.duration}`  ",
        f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency -H "
        "'Accept-Encoding: gzip'` on the anonymous `data_url` of a public "
        f"{args.features}-feature layer; `waymark serve --workers 2` with WAYMARK_REDIS_URL "
        "(local redis-server); uncached = WAYMARK_API_CACHE=false (snapshot read from object "
        "storage per request), cached = per-process LRU then Redis, keyed by the snapshot "
        "SHA-256. Both modes in one run, same data dir; rate limits off for the load.  ",
        c.notes_line(notes),
        "",
        c.md_table(["mode", "req/s", "p50 ms", "p99 ms", "non-2xx"], rows),
        "",
        f"cached / uncached = **{ratio:.2f}x** (target >= 3x: "
        f"{'PASS' if ratio >= 3 else 'FAIL'})",
    ])
    c.update_results("cache_rps", body)
    print(body)


if __name__ == "__main__":
    main()
