"""The Litestream configuration is generated from Waymark's settings, sized for the promised
point-in-time window, and accepted by the real binary."""

from __future__ import annotations

import subprocess

import yaml

from tests.integration.test_dr import litestream_binary
from waymark.backup import litestream
from waymark.settings import load_settings


def _settings(tmp_path, **env):  # type: ignore[no-untyped-def]
    base = {"WAYMARK_DATA_DIR": str(tmp_path / "var")}
    base.update(env)
    return load_settings(environ=base)


def test_file_replica_and_pitr_sizing(tmp_path):
    s = _settings(tmp_path, WAYMARK_BACKUP_URL=f"file://{tmp_path}/bk", WAYMARK_PITR_WINDOW_HOURS="72")
    cfg = litestream.config(s)
    assert cfg["dbs"][0]["path"] == str((tmp_path / "var" / "waymark.db").resolve())
    assert cfg["dbs"][0]["replica"] == {"type": "file", "path": f"{tmp_path}/bk/db",
                                        "sync-interval": "1s"}
    assert cfg["l0-retention"] == "4325m"  # 72 h + 5 min margin: exact restores in the window
    assert cfg["snapshot"] == {"interval": "24h", "retention": "96h"}
    assert [lvl["interval"] for lvl in cfg["levels"]] == ["30s", "5m", "1h"]


def test_s3_replica_with_server_side_encryption(tmp_path):
    s = _settings(tmp_path,
                  WAYMARK_BACKUP_URL="s3://bk/site1?endpoint=http://127.0.0.1:9000&region=eu-west-1"
                                     "&secret_access_key=hunter2hunter2",
                  WAYMARK_BACKUP_SSE_KMS_KEY_ID="arn:aws:kms:eu-west-1:1:key/abc")
    text = litestream.render(s)
    assert "hunter2" not in text  # credentials go through the environment only
    replica = yaml.safe_load(text)["dbs"][0]["replica"]
    assert replica == {"type": "s3", "bucket": "bk", "path": "site1/db", "sync-interval": "1s",
                       "endpoint": "http://127.0.0.1:9000", "force-path-style": True,
                       "region": "eu-west-1", "sse-kms-key-id": "arn:aws:kms:eu-west-1:1:key/abc"}
    env = litestream.child_env(s)
    assert env["AWS_SECRET_ACCESS_KEY"] == "hunter2hunter2" and "AWS_CA_BUNDLE" not in env


def test_real_litestream_accepts_the_generated_config(tmp_path):
    binary = litestream_binary()
    s = _settings(tmp_path, WAYMARK_BACKUP_URL=f"file://{tmp_path}/bk")
    path = litestream.write_config(s)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    proc = subprocess.run([binary, "databases", "-config", str(path)], capture_output=True,
                          text=True, timeout=60, env=litestream.child_env(s), check=False)
    assert proc.returncode == 0, proc.stderr
    assert str((tmp_path / "var" / "waymark.db").resolve()) in proc.stdout


def test_prod_requires_a_backup_target(tmp_path):
    s = _settings(tmp_path, WAYMARK_ENV="prod", WAYMARK_SECRET_KEY="k" * 48)
    assert any("WAYMARK_BACKUP_URL" in p for p in s.problems())


def test_short_window_snapshots_often_enough(tmp_path):
    s = _settings(tmp_path, WAYMARK_BACKUP_URL=f"file://{tmp_path}/bk", WAYMARK_PITR_WINDOW_HOURS="2")
    cfg = litestream.config(s)
    assert cfg["l0-retention"] == "125m"
    assert cfg["snapshot"] == {"interval": "2h", "retention": "4h"}


def test_deploy_example_is_the_generated_config():
    """deploy/litestream/litestream.example.yml is what its README says generates it."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "deploy" / "litestream" / "litestream.example.yml"
    s = load_settings(environ={"WAYMARK_DATA_DIR": "/var/lib/waymark",
                               "WAYMARK_BACKUP_URL": "s3://waymark-backup/prod?region=eu-west-1",
                               "WAYMARK_BACKUP_SSE_KMS_KEY_ID": "alias/waymark-backup"})
    assert litestream.render(s) == example.read_text()
