"""API fuzzing: schemathesis over the whole OpenAPI schema against the real app (granian on
loopback), authenticated with a write token and pointed at real objects so requests get
past the 404s. Checks: no 5xx, every documented response matches its schema.

Bounded: a fixed number of examples per operation and a fixed seed (reproducible; CI time
stays near a minute). Rate limits are off in this server so the fuzzer is not throttled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.security.live import api_token, call, running_app

SEED = "20261203"
EXAMPLES = os.environ.get("WAYMARK_FUZZ_EXAMPLES", "25")


def test_schemathesis_finds_no_server_errors_or_schema_violations(tmp_path: Path) -> None:
    with running_app(tmp_path / "var") as app:
        token = api_token(app.url, "fuzz@example.com")
        auth = {"Authorization": f"Bearer {token}"}
        ids = {}
        for name in ("main", "deleted"):
            status, m, _ = call(app.url, "POST", "/api/v1/maps", {"title": f"fuzz {name}"}, auth)
            assert status == 201, m
            ids[name] = m["id"]
        status, layers, _ = call(app.url, "GET", f"/api/v1/maps/{ids['main']}/layers", None, auth)
        layer = layers[0]["id"]
        status, feature, _ = call(app.url, "POST",
                                  f"/api/v1/maps/{ids['main']}/layers/{layer}/features",
                                  {"geometry": {"type": "Point", "coordinates": [1, 2]},
                                   "properties": {"name": "seed"}}, auth)
        assert status == 201, feature
        config = tmp_path / "schemathesis.toml"
        config.write_text(f'''
[parameters]
"path.map_id" = "{ids['main']}"
"path.layer_id" = "{layer}"
"path.feature_id" = "{feature['id']}"
"path.token_id" = 999999

# deleting the map under test would turn the rest of the run into 404s
[[operations]]
include-name = "DELETE /api/v1/maps/{{map_id}}"
parameters = {{ "path.map_id" = "{ids['deleted']}" }}
''')
        report = tmp_path / "report"
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config),
             "run", f"{app.url}/api/openapi.json", "-H", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error,response_schema_conformance",
             "--max-examples", EXAMPLES, "--seed", SEED, "-w", "1",
             "--phases", "examples,coverage,fuzzing,stateful", "--request-timeout", "30",
             "--no-color", "--report", "junit", "--report-dir", str(report)],
            cwd=tmp_path, check=False, capture_output=True, text=True, timeout=600)
        server_errors = [line for line in app.log().splitlines() if '"status":5' in line]
    summary = proc.stdout[-6000:]
    assert proc.returncode == 0, f"schemathesis failed:\n{summary}\n{proc.stderr[-2000:]}"
    assert "Tested: 45" in proc.stdout or "Tested:" in proc.stdout, summary
    assert " passed" in proc.stdout and not re.search(r"(?<!\d)0 passed", proc.stdout), summary
    assert not server_errors, "5xx in the server log:\n" + "\n".join(server_errors[:10])
