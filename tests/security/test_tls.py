"""TLS at the load balancer: the rendered deploy haproxy.cfg bound for TLS plus
deploy/haproxy/tls.cfg, a test CA made with openssl, curl as the client, the real app behind.

TLS 1.2+ only, HTTP redirected to HTTPS, HSTS on HTTPS responses; a flood from one client
address is refused (429) while another client (source 127.0.0.2, still loopback, sending to
127.0.0.1) keeps getting answers; a client that sends its headers slowly is cut off.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.deploy_support import waymark
from tests.security.live import running_app
from tests.servers import LOOPBACK, free_port, require_binary, stop_process

TLS_CFG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "tls.cfg"
RATE_LIMIT = 20  # requests per client IP per 10 s for this test (production: 500)
HEADER_TIMEOUT = 10  # `timeout http-request` in the shipped template


@dataclass
class Edge:
    https: int
    http: int
    ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca_and_cert(d: Path) -> Path:
    """ops.md §6: a local CA and a server certificate for localhost and 127.0.0.1."""
    require_binary("openssl", "openssl")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=Waymark Test CA", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    pem = d / "server.pem"
    pem.write_text((d / "server.crt").read_text() + (d / "server.key").read_text())
    return d / "ca.crt"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    haproxy = require_binary("haproxy", "haproxy")
    require_binary("curl", "curl")
    d = tmp_path_factory.mktemp("tls")
    ca = make_ca_and_cert(d)
    with running_app(d / "var") as app:
        plan = d / "plan.toml"
        plan.write_text(f'state_dir = "{d / "state"}"\nhaproxy_socket = "{d / "admin.sock"}"\n'
                        f'frontend_url = "https://localhost"\n'
                        f'[[instances]]\nname = "app1"\nport = {app.port}\n')
        https, plain = free_port(), free_port()
        rendered = waymark("deploy", "haproxy-config", "--plan", str(plan), "--bind",
                           f"{LOOPBACK}:{https} ssl crt {d / 'server.pem'} alpn h2,http/1.1",
                           "--metrics-bind", f"{LOOPBACK}:{free_port()}", "--rate-limit",
                           str(RATE_LIMIT))
        assert rendered.returncode == 0, rendered.stderr
        (d / "haproxy.cfg").write_text(rendered.stdout)
        (d / "tls.cfg").write_text(TLS_CFG.read_text().replace("{{http_bind}}",
                                                               f"{LOOPBACK}:{plain}"))
        cmd = [haproxy, "-f", str(d / "haproxy.cfg"), "-f", str(d / "tls.cfg")]
        check = subprocess.run([*cmd, "-c"], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(d / "haproxy.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while _curl(ca, f"https://localhost:{https}/readyz")[0] != "200":
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (d / "haproxy.log").read_text()
                time.sleep(0.3)
            time.sleep(10.5)  # start the flood test with an empty rate window
            yield Edge(https, plain, ca)
        finally:
            stop_process(proc)


def _curl(ca: Path, url: str, *opts: str) -> tuple[str, str]:
    """(status code, headers) of a curl request; status "000" when the handshake failed."""
    proc = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}",
                           "--max-time", "10", "--cacert", str(ca), "--resolve",
                           f"localhost:{url.split(':')[2].split('/')[0]}:{LOOPBACK}", *opts, url],
                          capture_output=True, text=True, check=False)
    return proc.stdout[-3:], proc.stdout[:-3] + proc.stderr


def test_https_with_the_test_ca_and_hsts(edge: Edge) -> None:
    status, headers = _curl(edge.ca, f"https://localhost:{edge.https}/api/v1/maps")
    assert status == "200", headers
    assert "strict-transport-security: max-age=31536000" in headers.lower(), headers


def test_certificate_is_verified_against_the_ca(edge: Edge, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    status, out = _curl(make_ca_and_cert(other), f"https://localhost:{edge.https}/healthz")
    assert status == "000" and "certificate" in out.lower(), out


@pytest.mark.parametrize("version,ok", [("--tlsv1.2", True), ("--tlsv1.3", True)])
def test_modern_tls_versions_are_accepted(edge: Edge, version: str, ok: bool) -> None:
    status, out = _curl(edge.ca, f"https://localhost:{edge.https}/healthz", version,
                        "--tls-max", version.removeprefix("--tlsv"))
    assert status == "200", out


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(edge: Edge, maximum: ssl.TLSVersion) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(edge.ca)
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer them at all
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = maximum
    with socket.create_connection((LOOPBACK, edge.https), timeout=10) as raw, \
            pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname="localhost")


def test_plain_http_is_redirected_to_https(edge: Edge) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, edge.http, timeout=10)
    conn.request("GET", "/m/abc?x=1", headers={"Host": "waymark.example"})
    resp = conn.getresponse()
    assert resp.status == 301
    assert resp.getheader("location") == "https://waymark.example/m/abc?x=1"
    conn.close()


def _https_status(edge: Edge, source: str) -> int:
    ctx = ssl.create_default_context(cafile=str(edge.ca))
    conn = http.client.HTTPSConnection("localhost", edge.https, timeout=10, context=ctx,
                                       source_address=(source, 0))
    conn._create_connection = lambda addr, timeout, src: socket.create_connection(  # type: ignore[attr-defined]
        (LOOPBACK, addr[1]), timeout, src)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


def test_flood_from_one_address_is_refused_while_another_client_is_served(edge: Edge) -> None:
    flood = [_https_status(edge, "127.0.0.1") for _ in range(RATE_LIMIT + 10)]
    assert flood.count(200) <= RATE_LIMIT and flood[-5:] == [429] * 5, flood
    others = [_https_status(edge, "127.0.0.2") for _ in range(5)]
    assert others == [200] * 5, others


def test_slow_header_client_is_cut_off(edge: Edge) -> None:
    """One header line a second, never the blank line: HAProxy ends it after
    `timeout http-request` (408 or a close), while it would otherwise wait forever."""
    ctx = ssl.create_default_context(cafile=str(edge.ca))
    raw = socket.create_connection((LOOPBACK, edge.https), timeout=10)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    start = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    cut_after, answer = None, b""
    for i in range(HEADER_TIMEOUT + 10):
        try:
            sock.sendall(f"X-Slow-{i}: x\r\n".encode())
            sock.settimeout(1.0)
            answer = sock.recv(200)  # the server answered (408) or closed (b"")
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        cut_after = time.monotonic() - start
        break
    sock.close()
    assert cut_after is not None, "the slow client was never cut off"
    assert HEADER_TIMEOUT - 1 <= cut_after <= HEADER_TIMEOUT + 3, cut_after
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
