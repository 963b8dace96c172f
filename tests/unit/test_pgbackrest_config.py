"""The pgBackRest configuration Waymark generates from its settings (backup/pgbackrest.py):
the repository follows WAYMARK_BACKUP_URL, retention follows the PITR window, and
credentials reach the written file only, never a printed copy."""

from __future__ import annotations

import configparser

import pytest

from waymark.backup import pgbackrest
from waymark.backup.litestream import BackupError
from waymark.backup.pg_backup import choose_kind
from waymark.settings import load_settings

AT = pgbackrest.Server("/var/lib/postgresql/15/main", 5433, "/run/postgresql")
PG = "postgresql+psycopg://waymark@db.internal/waymark"


def parsed(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_a_directory_repository_and_the_stanza() -> None:
    settings = load_settings(environ={}, database_url=PG, backup_url="file:///srv/backup")
    cfg = parsed(pgbackrest.render(settings, at=AT))
    assert cfg["global"]["repo1-path"] == "/srv/backup/pg"
    assert dict(cfg["waymark"]) == {"pg1-path": AT.data_dir, "pg1-port": "5433",
                                    "pg1-socket-path": "/run/postgresql"}
    assert cfg["global"]["repo1-retention-full"] == "2"
    conf = pgbackrest.postgres_conf(settings)
    assert conf["archive_mode"] == "on" and conf["archive_timeout"] == "60s"
    assert conf["archive_command"].endswith(
        "--config=/etc/pgbackrest/pgbackrest.conf --stanza=waymark archive-push %p")


def test_an_s3_repository_keeps_credentials_out_of_printed_copies() -> None:
    settings = load_settings(
        environ={}, database_url=PG, backup_sse_kms_key_id="alias/backup",
        backup_url="s3://bk/prod?endpoint=https://s3.internal:9000&region=eu-west-1"
                   "&access_key_id=AKIDEXAMPLE&secret_access_key=s3cr3t-value")
    printed = pgbackrest.render(settings, at=AT)
    assert "s3cr3t-value" not in printed and "AKIDEXAMPLE" not in printed
    written = parsed(pgbackrest.render(settings, secrets=True, at=AT))["global"]
    assert written["repo1-s3-key-secret"] == "s3cr3t-value"
    assert {k: written[k] for k in ("repo1-type", "repo1-s3-bucket", "repo1-path",
                                     "repo1-s3-endpoint", "repo1-storage-port",
                                     "repo1-s3-region", "repo1-s3-uri-style",
                                     "repo1-s3-kms-key-id")} == {
        "repo1-type": "s3", "repo1-s3-bucket": "bk", "repo1-path": "/prod/pg",
        "repo1-s3-endpoint": "s3.internal", "repo1-storage-port": "9000",
        "repo1-s3-region": "eu-west-1", "repo1-s3-uri-style": "path",
        "repo1-s3-kms-key-id": "alias/backup"}


def test_credentials_from_the_environment_go_to_pgbackrest_by_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={}, database_url=PG, backup_url="s3://bk/prod?region=us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/private-ca.pem")
    assert "envsecret" not in pgbackrest.render(settings, secrets=True, at=AT)
    env = pgbackrest.child_env(settings)
    assert env["PGBACKREST_REPO1_S3_KEY"] == "AKIDENV"
    assert env["PGBACKREST_REPO1_S3_KEY_SECRET"] == "envsecret"
    assert env["PGBACKREST_REPO1_STORAGE_CA_FILE"] == "/etc/ssl/private-ca.pem"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert pgbackrest.child_env(settings)["PGBACKREST_REPO1_S3_KEY_TYPE"] == "auto"  # a role


def test_retention_covers_the_pitr_window() -> None:
    for hours, fulls in ((24, 2), (24 * 7, 2), (24 * 10, 3), (24 * 30, 6)):
        settings = load_settings(environ={}, database_url=PG, backup_url="file:///b",
                                 pitr_window_hours=hours)
        assert pgbackrest.retention_full(settings) == fulls, hours


def test_full_weekly_differential_otherwise() -> None:
    day = 24 * 3600
    assert choose_kind({}, now=10 * day) == "full"
    recent = {"backup": [{"type": "full", "timestamp": {"stop": 8 * day}},
                         {"type": "diff", "timestamp": {"stop": 9 * day}}]}
    assert choose_kind(recent, now=10 * day) == "diff"
    assert choose_kind(recent, now=15 * day) == "full"


@pytest.mark.parametrize("overrides, message", [
    ({"database_url": ""}, "this database is SQLite"),
    ({"postgres_managed": True}, "are the provider's"),
    ({"backup_url": ""}, "no backup target"),
    ({"backup_url": "gs://bucket"}, "scheme 'gs' is not supported"),
])
def test_refusals_name_the_reason(overrides, message) -> None:  # type: ignore[no-untyped-def]
    values = {"database_url": PG, "backup_url": "file:///b", **overrides}
    settings = load_settings(environ={}, **values)
    with pytest.raises(BackupError, match=message):
        pgbackrest.render(settings, at=AT)
