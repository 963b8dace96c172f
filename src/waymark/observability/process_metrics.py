"""Memory and CPU of every process of one `waymark serve`, read from /proc at scrape time.

In multiprocess mode the registry only adds up the files the processes write, so
prometheus_client's own process collector (one process, no labels) is not there. This
collector walks the process tree instead -- the `serve` wrapper, granian's master, each app
worker, the job worker -- and exports, labelled by ``pid`` and ``role``:

- ``process_resident_memory_bytes`` (RSS) and ``waymark_process_pss_bytes`` (PSS: shared
  pages divided among the processes sharing them, so the sum is the real footprint);
- ``process_cpu_seconds_total`` (user + system) and ``process_start_time_seconds``.

Linux only (/proc); elsewhere it exports nothing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, cpu seconds, start time in seconds after boot) from /proc/<pid>/stat."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[19]) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _command(cmdline: str) -> str | None:
    """The `waymark` subcommand a command line runs ("serve", "worker"...), if any."""
    words = cmdline.split()
    for word, following in itertools.pairwise(words):
        if word == "waymark.cli" or word == "waymark" or word.endswith("/waymark"):
            return following
    return None


def _is_serve(cmdline: str) -> bool:
    return _command(cmdline) == "serve" or "waymark.appserver" in cmdline.split()


def serve_root(pid: int | None = None) -> int:
    """The outermost `waymark serve` (or granian master) above ``pid``, else ``pid``."""
    pid = pid or os.getpid()
    root, current = pid, pid
    while True:
        stat = _stat(current)
        if stat is None or stat[0] <= 1:
            return root
        current = stat[0]
        if _is_serve(_cmdline(current)):
            root = current


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def _role(pid: int, parent: int) -> str:
    """serve (the wrapper), master (granian's), worker (an app worker), jobs, or other."""
    cmdline = _cmdline(pid)
    if "waymark.appserver" in cmdline:  # forked workers keep their master's command line
        if _comm(pid) == "waymark-jobs":  # the job worker it forks (appserver.JOB_WORKER_NAME)
            return "jobs"
        return "worker" if "waymark.appserver" in _cmdline(parent) else "master"
    command = _command(cmdline)
    return {"worker": "jobs", "serve": "serve"}.get(command or "", "other")


def _boot_time() -> float:
    try:
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _pss(pid: int) -> int | None:
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rss(pid: int) -> int | None:
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


class ProcessTreeCollector(Collector):
    def __init__(self, root: int | None = None) -> None:
        self.root = root

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if not PROC.is_dir():
            return
        root = self.root or serve_root()
        booted = _boot_time()
        labels = ["pid", "role"]
        rss = GaugeMetricFamily("process_resident_memory_bytes",
                                "Resident memory size in bytes, per process of this server.",
                                labels=labels)
        pss = GaugeMetricFamily("waymark_process_pss_bytes",
                                "Proportional set size in bytes (shared pages divided among "
                                "the processes sharing them), per process of this server.",
                                labels=labels)
        cpu = CounterMetricFamily("process_cpu_seconds_total",
                                  "User and system CPU time spent, per process of this server.",
                                  labels=labels)
        start = GaugeMetricFamily("process_start_time_seconds",
                                  "Start time of the process since the Unix epoch in seconds.",
                                  labels=labels)
        for pid in _tree(root):
            stat = _stat(pid)
            if stat is None:
                continue  # gone since the walk
            key = [str(pid), _role(pid, stat[0])]
            if (resident := _rss(pid)) is not None:
                rss.add_metric(key, float(resident))
            if (proportional := _pss(pid)) is not None:
                pss.add_metric(key, float(proportional))
            cpu.add_metric(key, stat[1])
            start.add_metric(key, booted + stat[2])
        yield from (rss, pss, cpu, start)
