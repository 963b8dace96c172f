"""The `waymark` command, run as a real subprocess on a fresh data directory."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GEO_DATA

WAYMARK = Path(sys.executable).parent / "waymark"
EMAIL = "cli@example.com"
PASSWORD = "a long enough cli password"


_PYCACHE: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each `waymark` process imports the whole app; with PYTHONDONTWRITEBYTECODE set (as in
    this environment) every one recompiles it. Share a bytecode cache between them instead."""
    _PYCACHE[:] = [str(tmp_path_factory.mktemp("pycache"))]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WAYMARK_") and k != "PYTHONDONTWRITEBYTECODE"}
    if _PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE[0]
    env.update({"WAYMARK_DATA_DIR": str(data_dir), "WAYMARK_DEMO_DATA": "false", **extra})
    return env


def run(data_dir: Path, *args: str, input: str | None = None, check: bool = True,
        **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(WAYMARK), *args], input=input, capture_output=True, text=True,
                          env=_env(data_dir, **env), timeout=180, cwd=data_dir.parent,
                          check=False)
    if check:
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def migrated(data_dir: Path) -> Path:
    out = run(data_dir, "migrate").stdout
    assert re.search(r"database at revision \w+", out), out
    return data_dir


def _rows(data_dir: Path, table: str) -> int:
    with sqlite3.connect(data_dir / "waymark.db") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def test_migrate_creates_the_database_and_is_idempotent(data_dir: Path) -> None:
    first = run(data_dir, "migrate").stdout
    assert (data_dir / "waymark.db").is_file()
    second = run(data_dir, "migrate").stdout
    assert first == second
    assert _rows(data_dir, "users") == 0


@contextmanager
def _app_on(data_dir: Path) -> Iterator[Any]:
    """A test client of the real app on this data dir (file sessions: they outlive it)."""
    from litestar.testing import TestClient

    from waymark.app import create_app
    from waymark.settings import load_settings

    app = create_app(load_settings(environ={}, data_dir=data_dir, demo_data=False,
                                   session_store="file"))
    try:
        with TestClient(app) as tc:
            yield tc
    finally:
        app.state.services.db.dispose()


def _login_status(data_dir: Path, email: str, password: str) -> int:
    with _app_on(data_dir) as tc:
        return tc.post("/api/v1/auth/login", json={"email": email,
                                                   "password": password}).status_code


def test_user_reset_password(migrated: Path) -> None:
    run(migrated, "user", "create", EMAIL, "--password-stdin", input=PASSWORD + "\n")
    with _app_on(migrated) as tc:  # a session from before the reset
        assert tc.post("/api/v1/auth/login", json={"email": EMAIL,
                                                   "password": PASSWORD}).status_code == 200
        assert tc.get("/api/v1/auth/me").status_code == 200
        out = run(migrated, "user", "reset-password", EMAIL.upper()).stdout
        assert tc.get("/api/v1/auth/me").status_code == 401  # it has ended
    new = re.search(rf"new password for {re.escape(EMAIL)}: (\S+)", out).group(1)
    assert _login_status(migrated, EMAIL, new) == 200
    assert _login_status(migrated, EMAIL, PASSWORD) == 401
    out = run(migrated, "user", "reset-password", EMAIL, "--password-stdin",
              input="typed by the operator\n").stdout
    assert "typed by the operator" not in out and "sessions have ended" in out
    assert _login_status(migrated, EMAIL, "typed by the operator") == 200
    short = run(migrated, "user", "reset-password", EMAIL, "--password-stdin", input="short\n",
                check=False)
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    nobody = run(migrated, "user", "reset-password", "nobody@example.com", check=False)
    assert nobody.returncode == 1 and "no user nobody@example.com" in nobody.stderr
    run(migrated, "user", "disable", EMAIL)
    disabled = run(migrated, "user", "reset-password", EMAIL, check=False)
    assert disabled.returncode == 1 and "is disabled" in disabled.stderr
    run(migrated, "user", "enable", EMAIL)
    assert _login_status(migrated, EMAIL, "typed by the operator") == 200  # unchanged


def test_user_create_with_password_stdin(migrated: Path) -> None:
    out = run(migrated, "user", "create", EMAIL, "--name", "CLI", "--password-stdin",
              input=PASSWORD + "\n").stdout
    assert re.search(rf"created user \d+ <{re.escape(EMAIL)}>", out), out
    assert PASSWORD not in out
    assert _rows(migrated, "users") == 1
    dup = run(migrated, "user", "create", EMAIL, "--password-stdin", input=PASSWORD + "\n",
              check=False)
    assert dup.returncode != 0
    assert "Error" in dup.stderr
    assert _rows(migrated, "users") == 1


def test_import_then_export_round_trip(migrated: Path, tmp_path: Path) -> None:
    run(migrated, "user", "create", EMAIL, "--password-stdin", input=PASSWORD + "\n")
    src = GEO_DATA / "csv/vega/airports.csv"
    proc = run(migrated, "import", str(src), "--owner", EMAIL)
    out = proc.stdout + proc.stderr
    assert "reading airports.csv (csv," in out
    assert "importing" in out  # the progress bar (its label only, without a terminal)
    match = re.search(r"imported (\d+) features into map (\w+)", proc.stdout)
    assert match, out
    assert int(match.group(1)) == 3376
    map_id = match.group(2)
    assert _rows(migrated, "features") == 3376

    target = tmp_path / "out" / "airports.geojson"
    target.parent.mkdir()
    proc = run(migrated, "export", "--map", map_id, "--format", "geojson", "-o", str(target))
    assert f"to {target}" in proc.stdout
    doc = json.loads(target.read_bytes())
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 3376
    first = doc["features"][0]
    assert first["geometry"]["type"] == "Point"
    assert first["properties"]["iata"]  # the CSV columns are the properties

    # to standard output, and as a bundle
    csv_out = run(migrated, "export", "--map", map_id, "--format", "csv").stdout
    assert len(csv_out.strip().splitlines()) == 3376 + 1
    bundle = json.loads(run(migrated, "export", "--map", map_id, "--format", "bundle").stdout)
    assert bundle["format"] == "waymark-bundle"
    assert sum(len(layer["features"]) for layer in bundle["layers"]) == 3376


def test_import_of_broken_file_fails_and_changes_nothing(migrated: Path) -> None:
    run(migrated, "user", "create", EMAIL, "--password-stdin", input=PASSWORD + "\n")
    maps, layers = _rows(migrated, "maps"), _rows(migrated, "layers")
    proc = run(migrated, "import", str(GEO_DATA / "gpx/togeojson/bad.gpx"), "--owner", EMAIL,
               check=False)
    assert proc.returncode == 1
    assert "bad.gpx: line 5" in proc.stderr and "not a number" in proc.stderr
    assert (_rows(migrated, "maps"), _rows(migrated, "layers")) == (maps, layers)
    assert _rows(migrated, "features") == 0
    proc = run(migrated, "import", str(GEO_DATA / "gpx/togeojson/wpt.gpx"), "--owner",
               "nobody@example.com", check=False)
    assert proc.returncode == 1 and "--owner" in proc.stderr


def test_export_of_unknown_map_fails(migrated: Path) -> None:
    proc = run(migrated, "export", "--map", "nosuchmap", check=False)
    assert proc.returncode == 1 and "no map nosuchmap" in proc.stderr


def test_check_ok(migrated: Path) -> None:
    proc = run(migrated, "check")
    assert proc.stdout.strip().splitlines()[-1] == "OK"
    assert "FAIL" not in proc.stdout + proc.stderr
    # the effective configuration is listed, secrets redacted
    assert "  secret_key = ***" in proc.stdout.splitlines()
    assert "change-me" not in proc.stdout
    assert f"  data_dir = {migrated}" in proc.stdout.splitlines()


def test_check_fails_on_unmigrated_database(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    proc = run(data_dir, "check", check=False)
    assert proc.returncode == 1
    assert "FAIL:" in proc.stderr and "waymark migrate" in proc.stderr


def test_check_deploy_in_prod_with_default_secret_fails(migrated: Path) -> None:
    proc = run(migrated, "check", "--deploy", check=False, WAYMARK_ENV="prod")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = [line for line in proc.stderr.splitlines() if line.startswith("FAIL:")]
    assert any("WAYMARK_SECRET_KEY" in line for line in fails), proc.stderr
    assert "OK" not in proc.stdout.splitlines()
    # --deploy applies the production rules whatever the profile (docs/configuration.md)
    proc = run(migrated, "check", "--deploy", check=False)
    assert proc.returncode == 1 and "WAYMARK_SECRET_KEY" in proc.stderr
    # prod without --deploy checks them too; a strong secret clears that line
    proc = run(migrated, "check", check=False, WAYMARK_ENV="prod",
               WAYMARK_SECRET_KEY="x" * 48)
    assert proc.returncode == 1  # still no backup target etc.
    assert "WAYMARK_SECRET_KEY" not in proc.stderr and "WAYMARK_BACKUP_URL" in proc.stderr
