"""Public layer GET (`data_url`), cached vs uncached, requests/s in one run.

    .venv/bin/python bench/cache_rps.py [--features 1000] [--duration 10] [--connections 32]

Starts one redis-server (loopback, free port, no persistence) and, twice,
`waymark serve --workers 2 --no-job-worker` with WAYMARK_REDIS_URL on it: once with
WAYMARK_API_CACHE=false (every request reads the snapshot from object storage) and once with
the two-level cache on (per-process LRU, then Redis). Same data dir, same public map with a
1,000-feature layer; `wrk -t2 -c32 --latency -H 'Accept-Encoding: gzip'` on the anonymous
`data_url`. Target: cached >= 3 x uncached. Updates only its section of bench/RESULTS.md.

`--storage local,s3` (default) repeats both modes with the object storage on a real S3
protocol server (moto_server on loopback, the same one the tests use): several app hosts
sharing one Redis also share one object store, and that is where an uncached read is paid.
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--storage", default="local,s3", help="local, s3 or local,s3")
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("redis-server"):
        sys.exit("needs wrk and redis-server: apt-get install -y wrk redis-server")
    notes = c.machine_notes()
    tmp = Path(tempfile.mkdtemp(prefix="waymark-bench-cache-"))
    redis, redis_url = start_redis(tmp)
    results: dict[tuple[str, str], dict] = {}
    moto = None
    try:
        for storage in args.storage.split(","):
            env = {"WAYMARK_REDIS_URL": redis_url, "WAYMARK_RATE_LIMITS": "anon_read=off"}
            if storage == "s3":
                sys.path.insert(0, str(c.ROOT))
                from tests.servers import TEST_ACCESS_KEY, TEST_SECRET_KEY, start_moto_server

                moto = moto or start_moto_server()
                env.update({"WAYMARK_OBJECT_STORE_URL": moto.url(moto.make_bucket("bench-cache")),
                            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
                            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY})
                os.environ.pop("AWS_CA_BUNDLE", None)  # plain-http S3 on loopback
            data_dir = tmp / f"var-{storage}"
            c.setup_data_dir(data_dir, EMAIL, PASSWORD)
            data_url = None
            for mode, cache in (("uncached", "false"), ("cached", "true")):
                with c.waymark_server(data_dir, workers=2, WAYMARK_API_CACHE=cache,
                                      **env) as (base, _proc):
                    if data_url is None:
                        _snap, data_url, _gz = setup_layer(base, args.features)
                    run_wrk(base + data_url, 2, args.connections, args.threads, True)  # warm-up
                    results[storage, mode] = run_wrk(base + data_url, args.duration,
                                                     args.connections, args.threads, True)
                    print(storage, mode, results[storage, mode])
    finally:
        if moto is not None:
            moto.stop()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    label = {"local": "local files", "s3": "S3 (moto_server)"}
    rows = [[label[st], mode, f"{r['rps']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             r.get("non2xx", 0)] for (st, mode), r in results.items()]
    ratios = {st: results[st, "cached"]["rps"] / max(results[st, "uncached"]["rps"], 0.001)
              for st in args.storage.split(",")}
    body = "\n".join([
        "## Issue 4 (Redis layer): public layer GET, cached vs uncached",
        "",
        f"Command: `{c.command_prefix()}.venv/bin/python bench/cache_rps.py --features "
        f"{args.features} --duration {args.duration} --storage {args.storage}`  ",
        f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency -H "
        "'Accept-Encoding: gzip'` on the anonymous `data_url` of a public "
        f"{args.features}-feature layer; `waymark serve --workers 2` with WAYMARK_REDIS_URL "
        "(local redis-server); uncached = WAYMARK_API_CACHE=false (snapshot read from object "
        "storage per request), cached = per-process LRU then Redis, keyed by the snapshot "
        "SHA-256. Both modes in one run, same data dir per object store; rate limits off "
        "for the load. Object storage: local files, and S3 on a loopback moto_server (each "
        "uncached request is one S3 GET).  ",
        c.notes_line(notes),
        "Shared machine: 2 cores used at the same time by other sessions' test suites (see loadavg), and the load generator runs on the same cores; numbers are noisy and pessimistic, compare rows of one run rather than absolute values.  ",
        "",
        c.md_table(["object storage", "mode", "req/s", "p50 ms", "p99 ms", "non-2xx"], rows),
        "",
        "; ".join(f"{label[st]}: cached / uncached = **{r:.2f}x** (target >= 3x: "
                  f"{'PASS' if r >= 3 else 'FAIL'})" for st, r in ratios.items()),
    ])
    c.update_results("cache_rps", body)
    print(body)


if __name__ == "__main__":
    main()
