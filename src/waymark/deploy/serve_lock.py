"""Who may start `waymark serve`: never a second listener on a port in use, and, without
WAYMARK_REDIS_URL, one `waymark serve` per data dir.

granian listens with SO_REUSEPORT, so a second server on the same port started silently and
the kernel split connections between two independent processes (with in-memory sessions,
half of a logged-in user's requests got 401). Without Redis the embedded backends -- sessions,
real time, presence, rate limits -- live in one `waymark serve` and its workers, so a second
one on the same data dir splits them too. With Redis several instances may share a data dir
(the deploy plans and compose files do): the lock is not taken.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK_FILE = "serve.lock"


class ServeRefused(Exception):
    """Starting would split a running server's traffic or state; the message says why."""


def check_port_free(host: str, port: int) -> None:
    """Raise ServeRefused when something already listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ServeRefused(
                f"{host}:{port} is already in use (another `waymark serve`?): stop it, or "
                "choose another --port / WAYMARK_PORT") from None


def lock_data_dir(data_dir: Path, url: str) -> int:
    """Hold <data_dir>/serve.lock (flock, exclusive) for the life of this process -- also
    across an exec into Litestream, which keeps the descriptor. Returns it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 300).decode(errors="replace").strip() or "pid unknown"
        os.close(fd)
        raise ServeRefused(
            f"data dir {data_dir.resolve()} is already served by another `waymark serve` "
            f"(pid {holder}). Without WAYMARK_REDIS_URL one `waymark serve` owns a data dir "
            "(its sessions, real time, presence and rate limits live in its processes; "
            "use --workers for more processes): stop the other one, use another "
            "WAYMARK_DATA_DIR, or set WAYMARK_REDIS_URL to run several.") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}, {url}\n".encode())
    os.set_inheritable(fd, True)
    return fd
