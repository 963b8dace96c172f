"""The shipped WAF (deploy/nginx) run by a real nginx on loopback, in front of a real app."""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import LOOPBACK, free_port, missing_dependency, require_binary, stop_process

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
MODULE = Path("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so")
CRS = Path("/usr/share/modsecurity-crs/rules")
APT = "nginx libnginx-mod-http-modsecurity modsecurity-crs"
HOST = "waymark.test"  # a name, not 127.0.0.1 (CRS 920350 flags numeric Host headers)


@dataclass
class Waf:
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def audit(self) -> str:
        path = self.dir / "audit.log"
        return path.read_text(errors="replace") if path.exists() else ""


def render(upstream: str, listen: str, work: Path) -> Path:
    """nginx.conf for a test: the shipped server template and ModSecurity rules, plus the
    process-level lines (pid, logs, temp paths) a packaged nginx keeps in /etc/nginx."""
    server = (DEPLOY / "templates" / "waymark.conf.template").read_text()
    for name, value in {"WAYMARK_UPSTREAM": upstream, "WAF_LISTEN": listen,
                        "MODSEC_DIR": str(DEPLOY / "modsecurity")}.items():
        server = server.replace("${" + name + "}", value)  # envsubst with a variable list
    (work / "waymark.conf").write_text(server)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(f"""
load_module {MODULE};
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log notice;
events {{ worker_connections 256; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/tmp/body; proxy_temp_path {work}/tmp/proxy;
  fastcgi_temp_path {work}/tmp/fastcgi; uwsgi_temp_path {work}/tmp/uwsgi;
  scgi_temp_path {work}/tmp/scgi;
  modsecurity_rules 'SecAuditLog {work}/audit.log';
  include {work}/waymark.conf;
}}
""")
    return conf


@contextmanager
def running_waf(upstream: str, work: Path) -> Iterator[Waf]:
    nginx = require_binary("nginx", APT)
    if not MODULE.exists() or not CRS.is_dir():
        missing_dependency(f"ModSecurity module or CRS missing: apt-get install {APT}")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = render(upstream, f"{LOOPBACK}:{port}", work)
    check = subprocess.run([nginx, "-t", "-p", str(work), "-c", str(conf)],
                           check=False, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    log = open(work / "nginx.out", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
                conn.request("GET", "/healthz", headers={"Host": HOST})
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / "error.log").read_text()[-3000:])
            time.sleep(0.2)
        yield Waf(port, work)
    finally:
        stop_process(proc)
        log.close()


__all__ = ["HOST", "Waf", "running_waf"]
