"""`make upgrade`: the lock-file diff it prints, and the steps it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

UV_OLD = '''version = 1
[[package]]
name = "litestar"
version = "2.15.0"
[[package]]
name = "huey"
version = "2.5.0"
[[package]]
name = "gone"
version = "1.0"
'''
UV_NEW = UV_OLD.replace('"2.15.0"', '"2.25.0"').replace(
    '[[package]]\nname = "gone"\nversion = "1.0"\n', '[[package]]\nname = "fresh"\nversion = "0.1"\n')


def npm_lock(leaflet: str) -> str:
    return json.dumps({"lockfileVersion": 3, "packages": {
        "": {"name": "waymark-frontend"},
        "node_modules/leaflet": {"version": leaflet},
        "node_modules/@geoman-io/leaflet-geoman-free": {"version": "2.20.2"}}})


def diff(tmp_path: Path, name: str, old: str, new: str) -> str:
    (tmp_path / "old").mkdir(exist_ok=True)
    (tmp_path / "old" / name).write_text(old)
    (tmp_path / name).write_text(new)
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "lock_diff.py"),
                           str(tmp_path / "old" / name), str(tmp_path / name)],
                          capture_output=True, text=True, check=True)
    return proc.stdout


def test_uv_lock_changes_are_listed(tmp_path: Path) -> None:
    out = diff(tmp_path, "uv.lock", UV_OLD, UV_NEW)
    assert out.splitlines() == ["uv.lock: 3 change(s)", "  + fresh 0.1", "  - gone 1.0",
                                "  ~ litestar 2.15.0 -> 2.25.0"]


def test_package_lock_changes_are_listed(tmp_path: Path) -> None:
    assert "  ~ leaflet 1.9.3 -> 1.9.4" in diff(tmp_path, "package-lock.json",
                                                npm_lock("1.9.3"), npm_lock("1.9.4"))
    same = diff(tmp_path, "package-lock.json", npm_lock("1.9.4"), npm_lock("1.9.4"))
    assert "0 change(s)" in same and "(nothing changed)" in same


def test_the_real_lock_files_parse() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from lock_diff import versions
    finally:
        sys.path.pop(0)
    uv = versions((ROOT / "uv.lock").read_text(), "uv.lock")
    npm = versions((ROOT / "package-lock.json").read_text(), "package-lock.json")
    assert uv["waymark"] and uv["litestar"].startswith("2.")
    assert npm["leaflet"] == "1.9.4"


def test_make_upgrade_refreshes_within_ranges_then_audits_and_tests() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\nupgrade: $(UV)\n\ttools/upgrade.sh" in makefile
    script = (ROOT / "tools" / "upgrade.sh").read_text()
    steps = ['lock --upgrade', "npm update", "tools/lock_diff.py", ".ci/audit", "pytest"]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions), "upgrade steps out of order"
