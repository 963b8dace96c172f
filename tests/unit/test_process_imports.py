"""What the long-lived processes of `waymark serve` import: each package loaded costs every
process megabytes for its whole life (bench/memory.py, issue 14 item 8). Checked in a fresh
interpreter, because this test process has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

# what the `serve` process itself imports: the CLI, the pre-start checks, the embedded
# broker, the metrics listener and the logging set-up
SERVE_MODULES = ["waymark.cli", "waymark.backup.supervise", "waymark.deploy.serve_lock",
                 "waymark.realtime.broker", "waymark.ops.metrics_server", "waymark.ops.logging"]


def loaded_packages(modules: list[str], prelude: str = "") -> set[str]:
    """Top-level packages loaded by importing ``modules`` in a fresh interpreter."""
    script = (f"{prelude}\nimport importlib, json, sys\n"
              f"for name in {modules!r}: importlib.import_module(name)\n"
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if sys.modules[m]})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    return set(json.loads(done.stdout))


def test_the_serve_process_stays_without_the_app_and_the_database_libraries():
    loaded = loaded_packages(SERVE_MODULES)
    assert "waymark" in loaded and "click" in loaded  # it did import the CLI
    # the app, the ORM and migrations run in child processes; YAML only with a backup URL
    assert not loaded & {"litestar", "sqlalchemy", "alembic", "huey", "redis", "psycopg",
                         "yaml", "jinja2", "obstore"}
