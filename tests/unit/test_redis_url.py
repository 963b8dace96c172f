"""WAYMARK_REDIS_URL: redis://, rediss:// and Sentinel forms; anything else is refused."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from waymark.ops.redis import parse_redis_url
from waymark.settings import SettingsError


def test_plain_and_tls_urls_go_to_redis_py_as_they_are() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://:pw@cache.example:6380/2"):
        target = parse_redis_url(url)
        assert target.url == url and not target.is_sentinel


def test_sentinel_url() -> None:
    t = parse_redis_url("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3"
                        "?sentinel_password=sp")
    assert t.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)]
    assert (t.master, t.db, t.password, t.sentinel_password, t.ssl) == ("mymaster", 3, "s@cret",
                                                                        "sp", False)
    assert parse_redis_url("rediss+sentinel://h:1/m").ssl is True
    assert parse_redis_url("sentinel://h:1/m?ssl=true").ssl is True


@pytest.mark.parametrize("url", ["http://:pw@127.0.0.1:6379", "sentinel://:pw@h1:26379",
                                 "redis+sentinel://:pw@h1:port/m", "sentinel://:pw@h1:1/m/x"])
def test_bad_urls_are_refused_at_startup(tmp_path, url: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as info:
        make_settings(tmp_path, "sqlite:///x.db", redis_url=url)
    assert "WAYMARK_REDIS_URL" in str(info.value)
    assert "pw" not in str(info.value)  # the URL (it may hold a password) is not echoed
