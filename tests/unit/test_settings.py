"""Settings: profiles, overrides, *_FILE secrets, production refusals, redaction."""

from pathlib import Path

import pytest

from waymark.settings import DEFAULT_SECRET, SettingsError, load_settings


def test_defaults_are_embedded():
    s = load_settings(environ={})
    assert s.env == "dev"
    assert s.resolved_database_url.startswith("sqlite:///") and s.resolved_database_url.endswith("var/waymark.db")
    assert s.resolved_object_store_url.startswith("file://")
    assert s.redis_url == "" and s.problems() == []


def test_env_overrides_and_types():
    s = load_settings(environ={"WAYMARK_PORT": "9001", "WAYMARK_DEBUG": "yes",
                               "WAYMARK_DATA_DIR": "/tmp/x", "WAYMARK_MAX_UPLOAD_BYTES": "1_000"})
    assert s.port == 9001 and s.debug is True and s.data_dir == Path("/tmp/x")
    assert s.max_upload_bytes == 1000


@pytest.mark.parametrize("env,message", [
    ({"WAYMARK_PORT": "eighty"}, "WAYMARK_PORT='eighty' is not an integer"),
    ({"WAYMARK_DEBUG": "maybe"}, "is not a boolean"),
    ({"WAYMARK_ENV": "production"}, "is not one of dev, staging, prod"),
    ({"WAYMARK_SESSION_STORE": "redis"}, "WAYMARK_SESSION_STORE must be"),
    ({"WAYMARK_LOG_LEVEL": "loud"}, "WAYMARK_LOG_LEVEL must be"),
])
def test_bad_values_are_named(env, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s" * 40 + "\n")
    s = load_settings(environ={"WAYMARK_SECRET_KEY_FILE": str(secret)})
    assert s.secret_key == "s" * 40


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="WAYMARK_SECRET_KEY_FILE=.*cannot read"):
        load_settings(environ={"WAYMARK_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_prod_refuses_unsafe_configuration_and_names_the_fix():
    s = load_settings(environ={"WAYMARK_ENV": "prod", "WAYMARK_DEBUG": "true",
                               "WAYMARK_COOKIE_SECURE": "false"})
    text = "\n".join(s.problems())
    assert "WAYMARK_SECRET_KEY" in text
    assert "WAYMARK_DEBUG" in text
    assert "WAYMARK_COOKIE_SECURE" in text
    assert "WAYMARK_BACKUP_URL" in text


def test_prod_with_safe_values_has_no_problems():
    s = load_settings(environ={"WAYMARK_ENV": "prod", "WAYMARK_SECRET_KEY": "k" * 48,
                               "WAYMARK_BACKUP_URL": "file:///srv/waymark-backup"})
    assert s.session_store == "file" and s.cookie_secure is True
    assert s.problems() == []
    assert s.secret_key != DEFAULT_SECRET


def test_redacted_hides_secrets():
    s = load_settings(environ={"WAYMARK_SECRET_KEY": "topsecretvalue" * 3,
                               "WAYMARK_DATABASE_URL": "postgresql+psycopg://u:hunter22@db/w"})
    red = s.redacted()
    assert "topsecretvalue" not in str(red) and "hunter22" not in str(red)
    assert red["database_url"] == "postgresql+psycopg://u:***@db/w"
