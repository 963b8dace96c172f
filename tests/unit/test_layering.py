"""The layering checks of decision 0021 hold: the import-linter contracts in pyproject.toml
are kept (domain without infrastructure, no cycles between top-level packages) and mypy,
strict on the domain, and ruff with its widened rules find nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=600)


def test_import_contracts_are_kept() -> None:
    proc = run("lint-imports", "--no-cache")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_mypy_finds_nothing() -> None:
    proc = run("mypy")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_ruff_finds_nothing() -> None:
    proc = run("ruff", "check", "--no-cache", "src", "tests")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
