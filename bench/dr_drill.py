"""Disaster-recovery drill: measured RPO and RTO (issue 6), written to bench/RESULTS.md.

    .venv/bin/python bench/dr_drill.py [--runs 2]

Each run is the integration test
`tests/integration/test_dr.py::test_kill_9_lose_the_data_directory_restore_everything`
(real Litestream under `waymark serve`, replicating to moto_server S3 on loopback), which
writes its measurements to $WAYMARK_DR_RESULTS:

- app crash: kill -9 of every app process, data directory deleted, boot-time restore;
  lost acknowledged writes (must be 0) and RTO = kill until /readyz answers 200 again;
- host loss: Litestream killed with the app (kill -9 of the process group) during 3 s of
  back-to-back writes; RPO = kill time minus the acknowledgement time of the newest write
  the replica holds;
- replication lag: acknowledgement of one write until `litestream ltx` shows it in the
  replica (includes the polling cost of running `litestream ltx`).

The numbers are measured by the test, not by this script; this script only runs it and
records the results. Updates only its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TEST = "tests/integration/test_dr.py::test_kill_9_lose_the_data_directory_restore_everything"
COLUMNS = [("acknowledged_writes", "app-crash writes"), ("lost_writes", "lost"),
           ("rto_seconds", "RTO s"), ("db_restore_seconds", "of which DB restore s"),
           ("db_bytes", "DB bytes"), ("host_loss_writes", "host-loss writes"),
           ("host_loss_lost_writes", "lost"), ("rpo_host_loss_seconds", "RPO s (host loss)"),
           ("replication_lag_seconds", "replication lag s"),
           ("first_boot_seconds", "first boot s")]


def run_once(tmp: Path, i: int, test: str = TEST, timeout: float = 900) -> dict:
    """Run the drill test once; the measurements it wrote to $WAYMARK_DR_RESULTS."""
    out = tmp / f"dr-{i}.json"
    env = {**os.environ, "WAYMARK_DR_RESULTS": str(out), "CI": "true"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                          cwd=c.ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"drill run {i} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    notes = c.machine_notes()
    with tempfile.TemporaryDirectory(prefix="waymark-bench-dr-") as tmp:
        results = [run_once(Path(tmp), i + 1) for i in range(args.runs)]
    headers = ["run", *(label for _, label in COLUMNS)]
    rows = [[i + 1, *(r[key] for key, _ in COLUMNS)] for i, r in enumerate(results)]
    c.print_table(headers, rows)
    if args.no_results:
        return
    body = (
        "## Issue 6. Disaster recovery: RPO and RTO (Litestream, S3 on loopback)\n\n"
        f"Command: `.venv/bin/python bench/dr_drill.py --runs {args.runs}`  \n"
        f"Each run: `{TEST}` (real Litestream {litestream_version()} as the parent of "
        "`waymark serve`, moto_server S3 on 127.0.0.1, sync interval 1 s). App crash: kill -9 "
        "of every app process, data directory deleted, master key put back, `waymark serve` "
        "(boot-time restore) until /readyz is 200 = RTO. Host loss: kill -9 of Litestream and "
        "the app together during 3 s of back-to-back writes; RPO = kill time minus the "
        "acknowledgement of the newest write in the replica.  \n"
        f"{c.notes_line(notes)}. The machine is shared with other helpers' test suites and "
        "loaded: start-up times (and so RTO) are slower than on an idle host.\n\n"
        + c.md_table(headers, rows) + "\n\n"
        "Every acknowledged write survived the app crash in every run (Litestream outlives the "
        "app and does a final sync). On a host loss the restored database is always a "
        "consistent prefix of the acknowledged writes; the lost suffix is bounded by the sync "
        "interval plus upload time. RTO is dominated by app start-up, not by the database "
        "restore (its own column).\n")
    c.update_results("dr_drill", body)
    print("updated", c.RESULTS)


def litestream_version() -> str:
    binary = Path(sys.executable).parent / "litestream"
    try:
        return subprocess.run([str(binary), "version"], capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
