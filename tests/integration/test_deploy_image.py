"""The container image: built with buildah from the debootstrap base (cached between runs),
then smoke-tested with podman on the host network, bound to loopback: it starts with a
read-only root filesystem as a non-root user, /readyz answers 200, its HEALTHCHECK passes,
a map is created through the API, and SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_servers import Http
from tests.servers import LOOPBACK, free_port, require_binary

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/waymark:ci-smoke"
COMMIT = "smoke" + uuid.uuid4().hex[:7]

pytestmark = pytest.mark.timeout(1800)  # a cold build (no cached layers) downloads a lot


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("podman", "podman"), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def sandbox_options() -> list[str]:
    """runc with this process's own limits: in a sandboxed CI container (cgroups hybrid,
    capped rlimits) crun fails, and so do podman's default (higher) ulimits."""
    require_binary("runc", "runc")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = [65536 if v == resource.RLIM_INFINITY else v
             for v in resource.getrlimit(resource.RLIMIT_NPROC)]

    def limit(pair: tuple[int, int]) -> str:
        soft, hard = (65536 if v == resource.RLIM_INFINITY else v for v in pair)
        return f"{soft}:{hard}"

    return ["--runtime", "runc", "--ulimit", f"nofile={limit(nofile)}",
            "--ulimit", f"nproc={min(4096, nproc[0])}:{min(4096, nproc[1])}"]


@pytest.fixture(scope="module")
def image() -> str:
    require_binary("buildah", "buildah")
    require_binary("podman", "podman")
    if podman("image", "exists", "localhost/waymark-base:bookworm").returncode != 0:
        require_binary("debootstrap", "debootstrap")
    build = subprocess.run([str(ROOT / "deploy" / "container" / "build.sh"), IMAGE],
                           capture_output=True, text=True, timeout=1700, check=False,
                           env={**os.environ, "COMMIT": COMMIT, "VERSION": "0.0.0-ci"})
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str]]:
    name = f"waymark-smoke-{uuid.uuid4().hex[:8]}"
    port, metrics = free_port(), free_port()
    run = podman("run", "-d", "--name", name, *sandbox_options(), "--network", "host",
                 "--read-only",
                 "--tmpfs", "/var/lib/waymark:rw,U",  # U: owned by the image's user
                 "-e", f"WAYMARK_HOST={LOOPBACK}", "-e", f"WAYMARK_PORT={port}",
                 "-e", f"WAYMARK_METRICS_PORT={metrics}", "-e", "WAYMARK_DEMO_DATA=false",
                 image)
    try:
        assert run.returncode == 0, run.stderr
        yield name, f"http://{LOOPBACK}:{port}"
    finally:
        podman("rm", "-f", "-t", "5", name)


def test_image_metadata(image: str) -> None:
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == COMMIT
    assert labels["org.opencontainers.image.version"] == "0.0.0-ci"
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/opt/waymark/bin/waymark"] and config["Cmd"] == ["serve"]
    assert "/readyz" in " ".join(info["Healthcheck"]["Test"])
    assert f"WAYMARK_COMMIT={COMMIT}" in config["Env"]


def test_container_serves_readyz_and_creates_a_map(container: tuple[str, str]) -> None:
    name, base = container
    deadline = time.monotonic() + 120
    while True:
        try:
            ready = httpx.get(base + "/readyz", timeout=3)
            if ready.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        state = podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip()
        assert state == "running" and time.monotonic() < deadline, podman("logs", name).stderr
        time.sleep(0.5)
    assert ready.json()["status"] in {"ready", "degraded"}
    assert podman("healthcheck", "run", name).returncode == 0  # the image's HEALTHCHECK
    user = Http(base)
    user.signup("smoke@example.com")
    r = user.request("POST", "/api/v1/maps", json={"title": "Smoke test"})
    assert r.status_code == 201, r.text
    map_id = r.json()["id"]
    got = user.request("GET", f"/api/v1/maps/{map_id}")
    assert got.status_code == 200 and got.json()["title"] == "Smoke test"
    # non-root, and the root filesystem really is read-only
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    touch = podman("exec", name, "/bin/sh", "-c", "touch /opt/waymark/x")
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    # SIGTERM: a clean exit within the grace period
    stop = podman("stop", "-t", "30", name, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert podman("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"


def _derived_base(base: str, tag: str, script: str) -> str:
    """A copy of the base image changed by `script` (run inside it), committed as `tag`."""
    buildah = require_binary("buildah", "buildah")

    def run(*args: str) -> str:
        proc = subprocess.run([buildah, *args], capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    ctr = run("from", "--pull-never", base)
    try:
        run("run", "--isolation", "chroot", ctr, "--", "sh", "-c", script)
        run("commit", "-q", ctr, tag)
    finally:
        run("rm", ctr)
    return tag


def test_base_image_has_the_security_archive_and_is_rebuilt_when_stale(image: str) -> None:
    """build-base.sh never keeps a stale base: it checks the archives on every build and
    rebuilds when Debian published updates (here: a package recorded at an older version)
    or when the image predates the security archive in its sources."""
    base = "localhost/waymark-base:bookworm"
    check = [str(ROOT / "deploy" / "container" / "build-base.sh"), "--check"]
    sources = podman("run", "--rm", *sandbox_options(), "--network", "host", base,
                     "cat", "/etc/apt/sources.list")
    assert "bookworm-security main" in sources.stdout and "bookworm-updates main" in sources.stdout
    fresh = subprocess.run([*check, base], capture_output=True, text=True, timeout=300,
                           check=False)
    assert fresh.returncode == 0 and "up to date" in fresh.stdout, fresh.stdout + fresh.stderr
    stale = "localhost/waymark-base:stale-test"
    old = "localhost/waymark-base:no-security-test"
    broken = "localhost/waymark-base:broken-test"

    def recorded_version(version: str) -> str:
        return (f'sed -i "/^Package: base-files/,/^\\$/ s/^Version: .*/Version: {version}/" '
                "/var/lib/dpkg/status")

    try:
        _derived_base(base, stale, recorded_version("12.4"))  # bookworm ships 12.4+deb12uN
        got = subprocess.run([*check, stale], capture_output=True, text=True, timeout=300,
                             check=False)
        assert got.returncode == 1 and "stale: 1 package update(s)" in got.stdout, \
            got.stdout + got.stderr
        # apt unable to plan (a broken dependency here) is "could not check", never "up to date"
        _derived_base(base, broken, recorded_version("1.0"))
        got = subprocess.run([*check, broken], capture_output=True, text=True, timeout=300,
                             check=False)
        assert got.returncode == 2 and "could not check" in got.stdout, got.stdout + got.stderr
        _derived_base(base, old, "sed -i /-security/d /etc/apt/sources.list")
        got = subprocess.run([*check, old], capture_output=True, text=True, timeout=300,
                             check=False)
        assert got.returncode == 1 and "stale: all" in got.stdout, got.stdout + got.stderr
    finally:
        podman("rmi", "-f", stale, old, broken)
