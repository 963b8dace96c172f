"""The shared server fixtures of tests/servers.py answer on loopback."""

from __future__ import annotations

import os
import socket

import pytest

from tests.servers import (  # noqa: F401
    MotoServer,
    PostgresServer,
    free_port,
    moto_server,
    postgres_server,
    require_binary,
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_require_binary_finds_sh() -> None:
    assert require_binary("sh", "dash").endswith("/sh")


def test_require_binary_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install no-such-package"):
        require_binary("no-such-binary-waymark", "no-such-package")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install no-such-package"):
        require_binary("no-such-binary-waymark", "no-such-package")


@pytest.mark.s3
def test_moto_server_fixture(moto_server: MotoServer) -> None:  # noqa: F811
    assert moto_server.endpoint.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ACCESS_KEY_ID"] == "test"
    bucket = moto_server.make_bucket("fixture-check")
    assert moto_server.url(bucket, "p/q") == (
        f"s3://fixture-check/p/q?endpoint={moto_server.endpoint}&region=us-east-1"
    )
    names = [b["Name"] for b in moto_server.boto3_client().list_buckets()["Buckets"]]
    assert "fixture-check" in names


@pytest.mark.postgres
def test_postgres_server_answers(postgres_server: PostgresServer) -> None:  # noqa: F811
    import psycopg

    url = postgres_server.create_database("fixture_check")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/fixture_check"
    with psycopg.connect(postgres_server.conninfo("fixture_check")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_database()").fetchone() == ("fixture_check",)
