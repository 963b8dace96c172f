"""SSRF guard: internal addresses are refused before any connection is opened.

Resolvers and connectors are stubs; the only real traffic goes to a server on 127.0.0.1,
reached by allowing 127.0.0.1/32 explicitly (as an operator would allow a trusted host).
No test sends a packet to a private-range or public address.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from waymark.security.ssrf import UrlNotAllowed, check_url, fetch_public_url, networks

LOOPBACK_ONLY = networks(["127.0.0.1/32"])


class Recorder:
    """A connector that records the address and never touches the network."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.calls.append(address)
        raise ConnectionRefusedError("test connector: no traffic leaves this process")


class Resolver:
    """A stub resolver: answers[n] is the answer to the n-th lookup (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


@pytest.fixture(autouse=True)
def no_real_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: the default connector and resolver must not be reached by accident."""
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the guard tried to use the real network stack")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


BLOCKED = [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.9", "private"), ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"), ("168.63.129.16", "metadata"),
    ("0.0.0.0", "unspecified"), ("100.64.0.1", "not a public"), ("224.0.0.1", "multicast"),  # noqa: S104 - refused
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 wrapping 169.254.169.254
]


@pytest.mark.parametrize("address,reason", BLOCKED)
def test_internal_address_literals_are_refused_without_connecting(address: str,
                                                                   reason: str) -> None:
    connector = Recorder()
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UrlNotAllowed, match=reason):
        fetch_public_url(f"http://{host}/latest/meta-data/", connector=connector,
                         resolver=Resolver(["203.0.113.1"]))
    assert connector.calls == []


@pytest.mark.parametrize("address,reason", BLOCKED[:12])
def test_names_resolving_to_internal_addresses_are_refused(address: str, reason: str) -> None:
    connector = Recorder()
    resolver = Resolver([address])
    with pytest.raises(UrlNotAllowed, match=reason) as info:
        fetch_public_url("https://tiles.example.test/0/0/0.png", connector=connector,
                         resolver=resolver)
    assert info.value.status_code == 422 and info.value.code == "url_not_allowed"
    assert resolver.lookups == ["tiles.example.test"]
    assert connector.calls == []


def test_one_internal_address_among_public_ones_is_enough_to_refuse() -> None:
    connector = Recorder()
    with pytest.raises(UrlNotAllowed, match="private"):
        fetch_public_url("http://mixed.example.test/", connector=connector,
                         resolver=Resolver(["93.184.216.34", "10.0.0.7"]))
    assert connector.calls == []


def test_rebinding_name_connects_to_the_checked_address_only() -> None:
    """First lookup public, later lookups internal: the guard looks up once and connects to
    the public address it checked (the stub connector refuses, so nothing is sent)."""
    connector = Recorder()
    resolver = Resolver(["93.184.216.34"], ["169.254.169.254"])
    with pytest.raises(ConnectionRefusedError):
        fetch_public_url("http://rebind.example.test/x", connector=connector, resolver=resolver)
    assert resolver.lookups == ["rebind.example.test"]
    assert connector.calls == [("93.184.216.34", 80)]


def test_rebinding_name_whose_first_answer_is_internal_is_refused() -> None:
    connector = Recorder()
    resolver = Resolver(["169.254.169.254"], ["93.184.216.34"])
    with pytest.raises(UrlNotAllowed, match="metadata"):
        fetch_public_url("http://rebind.example.test/", connector=connector, resolver=resolver)
    assert connector.calls == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x.example.test/",
                                 "ftp://x.example.test/", "http://user:pw@x.example.test/",
                                 "http:///nohost", "http://x.example.test:99999/",
                                 "javascript:alert(1)"])
def test_other_schemes_credentials_and_malformed_urls_are_refused(url: str) -> None:
    connector = Recorder()
    with pytest.raises(UrlNotAllowed):
        fetch_public_url(url, connector=connector, resolver=Resolver(["93.184.216.34"]))
    assert connector.calls == []


def test_unresolvable_name_is_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(-2, "Name or service not known")
    with pytest.raises(UrlNotAllowed, match="cannot resolve"):
        check_url("http://nowhere.example.test/", resolver=fails)


def test_public_address_is_allowed() -> None:
    target = check_url("https://tiles.example.test:8443/a/b.png?x=1",
                       resolver=Resolver(["2606:4700::1111", "93.184.216.34"]))
    assert (target.ip, target.port, target.host, target.path) == \
        ("2606:4700::1111", 8443, "tiles.example.test", "/a/b.png?x=1")


# ---- real traffic, to 127.0.0.1 only ------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        _Handler.seen.append((self.path, self.headers.get("Host")))
        if self.path == "/redirect-internal":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"tile bytes"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen.clear()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _real_loopback_connector(calls: list[tuple[str, int]]):  # type: ignore[no-untyped-def]
    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        assert address[0] == "127.0.0.1", address  # never anywhere else
        calls.append(address)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
        return sock
    return connect


def test_fetch_pins_the_checked_address_and_sends_the_name_as_host(local_server: int) -> None:
    calls: list[tuple[str, int]] = []
    resolver = Resolver(["127.0.0.1"], ["10.9.9.9"])  # a second lookup would be internal
    result = fetch_public_url(f"http://tiles.example.test:{local_server}/1/2/3.png",
                              resolver=resolver, connector=_real_loopback_connector(calls),
                              allow=LOOPBACK_ONLY)
    assert (result.status, result.body) == (200, b"tile bytes")
    assert calls == [("127.0.0.1", local_server)]
    assert resolver.lookups == ["tiles.example.test"]
    assert _Handler.seen == [("/1/2/3.png", f"tiles.example.test:{local_server}")]


def test_redirect_to_an_internal_address_is_refused(local_server: int) -> None:
    calls: list[tuple[str, int]] = []
    with pytest.raises(UrlNotAllowed, match="metadata"):
        fetch_public_url(f"http://127.0.0.1:{local_server}/redirect-internal",
                         connector=_real_loopback_connector(calls), allow=LOOPBACK_ONLY,
                         resolver=Resolver(["127.0.0.1"]))
    assert calls == [("127.0.0.1", local_server)]  # the redirect target was never contacted


def test_oversized_response_is_refused(local_server: int) -> None:
    with pytest.raises(UrlNotAllowed, match="larger than 4 bytes"):
        fetch_public_url(f"http://127.0.0.1:{local_server}/big", max_bytes=4,
                         connector=_real_loopback_connector([]), allow=LOOPBACK_ONLY)
