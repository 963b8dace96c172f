"""The one way the server may fetch a URL a user gave it (remote imports, tile or icon
proxies, webhooks): `fetch_public_url`, which refuses internal addresses (SSRF).

Rules: http/https only, no credentials in the URL; the host name is resolved ONCE and every
address it resolves to must be public (not loopback, private, link-local, CGNAT, multicast,
reserved, unspecified, or a cloud metadata address; IPv4-mapped/6to4/Teredo IPv6 forms are
unwrapped first). The connection then goes to the address that was checked, with the name
only in the Host header and TLS SNI/certificate check, so a DNS answer that changes between
the check and the connect (DNS rebinding) cannot redirect it. Redirects are followed by
hand, each hop checked the same way. Nothing in Waymark fetches user URLs today; new code
that does must go through here (docs/decisions/0010-security-hardening.md).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from waymark.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
Connector = Callable[[tuple[str, int], float], socket.socket]

# Global-looking addresses that still reach a cloud provider's instance services.
METADATA = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack (also link-local)
    "169.254.170.2/32",  # AWS ECS task metadata
    "fd00:ec2::254/128",  # AWS IMDS over IPv6
    "100.100.100.200/32",  # Alibaba Cloud
    "168.63.129.16/32",  # Azure WireServer
))
REDIRECTS = {301, 302, 303, 307, 308}


class UrlNotAllowed(Invalid):
    """The URL is malformed or points at an address the server must not reach."""

    code = "url_not_allowed"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (both families), in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def _unwrap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                return inner
    return ip


def forbidden_reason(ip: IPAddress, allow: Iterable[Network] = ()) -> str | None:
    """Why the server must not connect to `ip`, or None when it may."""
    if any(ip in net for net in allow):
        return None
    ip = _unwrap(ip)
    if any(ip in net for net in allow):
        return None
    if any(ip in net for net in METADATA if net.version == ip.version):
        return "a cloud metadata address"
    for attr, reason in (("is_unspecified", "the unspecified address"),
                         ("is_loopback", "a loopback address"),
                         ("is_link_local", "a link-local address"),
                         ("is_private", "a private-network address"),
                         ("is_multicast", "a multicast address"),
                         ("is_reserved", "a reserved address")):
        if getattr(ip, attr):
            return reason
    if not ip.is_global:  # CGNAT 100.64/10, documentation ranges, ...
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `ip`, say `host` in Host/SNI."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    path: str


def check_url(url: str, *, resolver: Resolver = system_resolver,
              allow: Iterable[Network] = ()) -> Target:
    """Validate `url` and resolve its host once; raise UrlNotAllowed unless every address
    is allowed. The returned Target pins the address the connection must use."""
    allow = tuple(allow)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("the URL is malformed", details={"url": url}) from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("only http and https URLs can be fetched", details={"url": url})
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("URLs with credentials are not fetched", details={"url": url})
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed("the URL has no host", details={"url": url})
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            raise UrlNotAllowed(f"cannot resolve {host}", details={"url": url}) from exc
        if not addresses:
            raise UrlNotAllowed(f"cannot resolve {host}", details={"url": url})
    for addr in addresses:
        try:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
        except ValueError:
            raise UrlNotAllowed(f"{host} resolved to a malformed address",
                                details={"url": url}) from None
        reason = forbidden_reason(ip, allow)
        if reason:
            raise UrlNotAllowed(f"{host} resolves to {reason}; the server does not fetch it",
                                details={"url": url, "address": str(ip)})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, addresses[0].split("%", 1)[0], path)


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to a pinned IP with the original host name in Host (and SNI for TLS)."""

    def __init__(self, target: Target, connector: Connector, timeout: float,
                 tls: ssl.SSLContext | None) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._target = target
        self._connector = connector
        self._tls = tls

    def connect(self) -> None:
        sock = self._connector((self._target.ip, self._target.port), self.timeout)
        if self._tls is not None:
            sock = self._tls.wrap_socket(sock, server_hostname=self._target.host)
        self.sock = sock


@dataclass
class FetchResult:
    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def fetch_public_url(url: str, *, resolver: Resolver = system_resolver,
                     connector: Connector = _connect, allow: Iterable[Network] = (),
                     timeout: float = 10.0, max_bytes: int = 10 * 1024 * 1024,
                     max_redirects: int = 3, tls: ssl.SSLContext | None = None,
                     headers: dict[str, str] | None = None) -> FetchResult:
    """GET `url` safely (see module docstring). `allow` lists networks an operator trusts
    (and tests use for 127.0.0.1); `resolver`/`connector` are replaceable for tests."""
    allow = tuple(allow)
    for _hop in range(max_redirects + 1):
        target = check_url(url, resolver=resolver, allow=allow)
        context = (tls or ssl.create_default_context()) if target.scheme == "https" else None
        conn = _PinnedConnection(target, connector, timeout, context)
        try:
            conn.request("GET", target.path, headers={"User-Agent": "Waymark", **(headers or {})})
            resp = conn.getresponse()
            location = resp.getheader("location")
            if resp.status in REDIRECTS and location:
                url = urljoin(target.url, location)
                continue
            body = resp.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise UrlNotAllowed(f"the response is larger than {max_bytes} bytes",
                                    code="too_large", status=413, details={"url": target.url})
            return FetchResult(target.url, resp.status, dict(resp.getheaders()), body)
        finally:
            conn.close()
    raise UrlNotAllowed(f"more than {max_redirects} redirects", details={"url": url})


def networks(spec: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(n, strict=False) for n in spec]


__all__ = ["FetchResult", "Target", "UrlNotAllowed", "check_url", "fetch_public_url",
           "forbidden_reason", "networks", "system_resolver"]

