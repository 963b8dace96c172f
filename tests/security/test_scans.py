"""Static and dependency scans: bandit is clean (findings fixed or justified in place), and
the dependency audit never reports success when it could not check (offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / ".ci" / "audit"


def test_bandit_finds_nothing_in_src() -> None:
    bandit = Path(sys.executable).with_name("bandit")
    proc = subprocess.run([str(bandit), "-q", "-c", "pyproject.toml", "-r", "src"], cwd=ROOT,
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _offline_env(**extra: str) -> dict[str, str]:
    """All HTTP(S) goes to a closed port on loopback: nothing leaves the machine."""
    proxy = f"http://{LOOPBACK}:{free_port()}"
    return {**os.environ, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy,
            "http_proxy": proxy, "npm_config_https_proxy": proxy, "npm_config_proxy": proxy,
            "NO_PROXY": "", "no_proxy": "", **extra}


def test_dependency_audit_that_cannot_run_is_a_failure() -> None:
    proc = subprocess.run([str(AUDIT)], cwd=ROOT, env=_offline_env(), check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "AUDIT FAILED: could not run: pip-audit" in proc.stderr
    assert "AUDIT FAILED: could not run: npm audit" in proc.stderr
    assert "NOT audited" in proc.stderr


def test_dependency_audit_reports_vulnerabilities(tmp_path: Path) -> None:
    """A finding (exit 1) wins over an audit that could not run (exit 2)."""
    fake = tmp_path / "venv" / "bin"
    fake.mkdir(parents=True)
    (fake / "pip-audit").write_text("#!/bin/sh\necho 'Found 1 known vulnerability in 1 package'\n"
                                    "echo 'jinja2 3.1.0 GHSA-xxxx 3.1.3'\nexit 1\n")
    (fake / "pip-audit").chmod(0o755)
    proc = subprocess.run([str(AUDIT)], cwd=ROOT, env=_offline_env(VENV=str(tmp_path / "venv")),
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "AUDIT FAILED: vulnerable: pip-audit" in proc.stderr
