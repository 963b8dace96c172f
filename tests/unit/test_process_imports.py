"""What the long-lived processes of `waymark serve` import: each package loaded costs every
process megabytes for its whole life (bench/memory.py, issue 14 item 8). Checked in a fresh
interpreter, because this test process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# what the `serve` process itself imports: the CLI, the pre-start checks, the embedded
# broker, the metrics listener and the logging set-up
SERVE_MODULES = ["waymark.cli", "waymark.serve_command", "waymark.cli_support", "waymark.backup.supervise", "waymark.deploy.serve_lock",
                 "waymark.realtime.broker", "waymark.observability.metrics_server",
                 "waymark.observability.logging"]


def loaded_packages(tmp_path: Path, modules: list[str], prelude: str = "") -> set[str]:
    """Top-level packages loaded by importing ``modules`` in a fresh interpreter (with a
    data dir of its own: waymark.asgi makes the app)."""
    script = (f"{prelude}\nimport importlib, json, sys\n"
              f"for name in {modules!r}: importlib.import_module(name)\n"
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if sys.modules[m]})))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env["WAYMARK_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=tmp_path, env=env)
    return set(json.loads(done.stdout))


def test_the_serve_process_stays_without_the_app_and_the_database_libraries(tmp_path):
    loaded = loaded_packages(tmp_path, SERVE_MODULES)
    assert "waymark" in loaded and "click" in loaded  # it did import the CLI
    # the app, the ORM and migrations run in child processes; YAML only with a backup URL
    assert not loaded & {"litestar", "sqlalchemy", "alembic", "huey", "redis", "psycopg",
                         "yaml", "jinja2", "obstore"}


SKIP_CONSOLE = "from waymark.lean import skip_console_libraries; skip_console_libraries()"


def test_server_processes_stay_without_rich_and_still_log_tracebacks(tmp_path):
    # structlog imports rich (and pygments) whenever installed; the server processes skip it
    assert not loaded_packages(tmp_path, [*SERVE_MODULES, "waymark.asgi"], SKIP_CONSOLE) & {
        "rich", "pygments"}
    script = (f"{SKIP_CONSOLE}\n"
              "from waymark.observability.logging import configure_logging, get_logger\n"
              "configure_logging('info')\n"
              "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
              "    get_logger('waymark.test').exception('division failed')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["event"] == "division failed"
    assert "Traceback" in line["exception"] and "ZeroDivisionError" in line["exception"]



def test_granians_master_makes_the_app_before_forking_without_threads_or_open_files(tmp_path):
    # the workers are forked from the master with the app made (waymark.appserver.preload);
    # a thread, lock holder, connection or open file made there would be shared by all
    script = ("import json, os, sys, threading\n"
              "from waymark.appserver import preload\n"
              "preload(sys.argv[1:])\n"
              "fds = []\n"
              "for fd in os.listdir('/proc/self/fd'):\n"
              "    try:\n        fds.append(os.readlink(f'/proc/self/fd/{fd}'))\n"
              "    except FileNotFoundError:  # the listing's own descriptor, closed now\n"
              "        pass\n"
              "print(json.dumps({'made': 'waymark.asgi' in sys.modules, 'fds': fds,\n"
              "                  'threads': threading.active_count()}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYMARK_")}
    env["WAYMARK_DATA_DIR"] = str(tmp_path)

    def master(*argv: str) -> dict:
        done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                              text=True, check=True, cwd=tmp_path, env=env)
        return json.loads(done.stdout.strip().splitlines()[-1])

    preloaded = master("--interface", "asgi", "--workers", "2", "waymark.asgi:app")
    assert preloaded["made"]
    assert preloaded["threads"] == 1
    assert not [fd for fd in preloaded["fds"] if fd.startswith(str(tmp_path)) or "socket:" in fd]
    assert not master("--interface", "asgi", "--reload", "waymark.asgi:app")["made"]
