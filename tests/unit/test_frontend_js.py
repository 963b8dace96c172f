"""The browser code's own unit tests (frontend/tests/*.test.mjs: classification, colour
ramps), run with node's built-in test runner so `make test` runs them and a failure fails
the build. No test-runner dependency: node --test ships with Node."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.servers import require_binary
from waymark.maps.styles import RAMPS

REPO = Path(__file__).resolve().parents[2]


def test_node_unit_tests_pass() -> None:
    node = require_binary("node", "nodejs")
    tests = sorted(str(p.relative_to(REPO)) for p in (REPO / "frontend" / "tests").glob("*.test.mjs"))
    assert tests, "no frontend tests found"
    proc = subprocess.run([node, "--test", *tests], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", proc.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", proc.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) > 0 and failed and failed.group(1) == "0", proc.stdout


def test_the_browser_knows_every_ramp_the_api_accepts() -> None:
    source = (REPO / "frontend" / "ramps.js").read_text()
    names = re.findall(r"^  (\w+): \{", source, re.MULTILINE)
    assert tuple(names) == RAMPS
