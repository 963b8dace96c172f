"""The init step of a compose (or any split) deployment: `waymark restore --boot` restores a
missing database, says so when there is nothing to restore, and fails -- stopping the start --
when the replica cannot be read; `serve --no-migrate` never creates an empty database that
Litestream would then replicate over the backup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WAYMARK = Path(sys.executable).parent / "waymark"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WAYMARK_") and k != "AWS_CA_BUNDLE"}
    env.update({"WAYMARK_DATA_DIR": str(tmp_path / "var"), "WAYMARK_DEMO_DATA": "false",
                "WAYMARK_BACKUP_URL": f"file://{tmp_path / 'backup'}"})
    return subprocess.run([str(WAYMARK), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_boot_restore_stops_the_start_when_the_replica_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "db").write_text("not a replica")  # an unreadable replica
    proc = _run(tmp_path, "restore", "--boot")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "boot-time restore failed" in proc.stderr and "cannot list the replica" in proc.stderr
    assert not (tmp_path / "var" / "waymark.db").exists()


def test_boot_restore_with_no_replica_yet_is_a_new_install(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    proc = _run(tmp_path, "restore", "--boot")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to restore" in proc.stdout
    assert not (tmp_path / "var" / "waymark.db").exists()  # migrate creates it, next


def test_serve_without_migrations_refuses_a_missing_database(tmp_path: Path) -> None:
    proc = _run(tmp_path, "serve", "--no-migrate", "--no-backup")
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr and "waymark restore --boot" in proc.stderr
    assert not (tmp_path / "var" / "waymark.db").exists()
