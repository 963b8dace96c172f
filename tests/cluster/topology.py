"""The multi-node Waymark of tests/cluster, on loopback: PostgreSQL primary + synchronous
replica under Patroni (one etcd) behind an HAProxy that follows the primary; Redis primary +
replica + 3 Sentinels; SeaweedFS as the S3 store; 3 app nodes (`waymark serve
--no-job-worker`, each with its own data dir) managed by `waymark deploy` behind HAProxy;
2 job workers (`waymark worker`, own data dirs). Nothing is shared on disk but the master
key file, which stands for a secret every node mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster_servers import (
    PatroniCluster,
    SeaweedFS,
    start_patroni_cluster,
    start_seaweedfs,
    wait_for,
)
from tests.integration.deploy_support import METRICS_TOKEN, HAProxy, start_haproxy
from tests.redis_servers import SentinelGroup, start_sentinel_group
from tests.servers import LOOPBACK, TEST_REGION, free_port
from waymark.db.migrate import head_revision
from waymark.deploy.haproxy import RuntimeApi
from waymark.deploy.plan import load_plan
from waymark.deploy.processes import wait_ready
from waymark.deploy.rolling import State
from waymark.storage.keys_provider import LocalKeyFile

ROOT = Path(__file__).resolve().parents[2]
WAYMARK = Path(sys.executable).parent / "waymark"
NODES = ("app1", "app2", "app3")
WORKERS = ("worker1", "worker2")
BACKEND = "be_app"


# ---- releases: the same code, and copies that ship an expand / a contract migration -------
EXPAND = '''"""cluster test release r2: maps.cluster_note (expand: a nullable column)"""
import sqlalchemy as sa
from alembic import op

revision = 'cluster_test_expand'
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('maps', sa.Column('cluster_note', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('maps', 'cluster_note')
'''
CONTRACT = '''"""cluster test release r3: drop maps.cluster_note (contract, one release later)"""
from alembic import op

revision = 'cluster_test_contract'
down_revision = 'cluster_test_expand'
branch_labels = None
depends_on = None
phase = "contract"


def upgrade() -> None:
    op.drop_column('maps', 'cluster_note')


def downgrade() -> None:
    raise NotImplementedError("contract migrations are not undone")
'''


def make_release(root: Path, name: str, migrations: dict[str, str]) -> Path:
    """A release directory: bin/waymark runs its own copy of the code (src/) with
    ``migrations`` (file name -> source) added to its Alembic versions."""
    release = root / name
    src = release / "src" / "waymark"
    shutil.copytree(ROOT / "src" / "waymark", src,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for filename, source in migrations.items():
        (src / "db" / "migrations" / "versions" / filename).write_text(source)
    (release / "bin").mkdir()
    script = release / "bin" / "waymark"
    script.write_text(f"#!/bin/sh\nexport WAYMARK_COMMIT={name}\n"
                      f"export PYTHONPATH={release / 'src'}\nexec {WAYMARK} \"$@\"\n")
    script.chmod(0o755)
    return release


def releases(root: Path) -> dict[str, Path]:
    expand = {"9001_cluster_test_expand.py": EXPAND.format(down=head_revision())}
    return {
        "r1": make_release(root, "r1", {}),
        "r2": make_release(root, "r2", expand),
        "r3": make_release(root, "r3", {**expand,
                                        "9002_cluster_test_contract.py": CONTRACT}),
    }


# ---- the cluster ---------------------------------------------------------------------------------
def base_env() -> dict[str, str]:
    """This environment without Waymark settings or the machine's AWS_CA_BUNDLE (which must
    not reach S3 clients talking plain HTTP to SeaweedFS)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("WAYMARK_") and k != "AWS_CA_BUNDLE"}


@dataclass
class Worker:
    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, release: Path) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 - written by the process until it stops
        self.process = subprocess.Popen(
            [str(release / "bin" / "waymark"), "worker", "--threads", "2"], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    root: Path
    pg: PatroniCluster
    redis: SentinelGroup
    s3: SeaweedFS
    bucket: str
    env: dict[str, str]
    plan_path: Path
    haproxy: HAProxy
    ports: dict[str, int]
    releases: dict[str, Path]
    workers: list[Worker] = field(default_factory=list)

    @property
    def lb(self) -> str:
        return self.haproxy.url

    def node_url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[name]}"

    def node_data_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state" / "state.json").read_text())

    def deploy(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(WAYMARK), "deploy", *args, "--plan", str(self.plan_path)],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env={**base_env(), **self.env})

    def api(self) -> RuntimeApi:
        return RuntimeApi(self.haproxy.socket, BACKEND)

    def haproxy_status(self, name: str) -> str:
        return self.api().stats().get(name, {}).get("status", "")

    # ---- app node loss -----------------------------------------------------------------
    def kill_node(self, name: str) -> None:
        """kill -9 of the node's whole process group (serve and its granian workers)."""
        os.killpg(self.state()["instances"][name]["pid"], signal.SIGKILL)

    def restart_node(self, name: str) -> None:
        """What the service manager does after a crash: start the same release again, as a
        process of its own session that is not this test's child (`waymark deploy` must be
        able to stop it later, and only init reaps it)."""
        plan = load_plan(self.plan_path)
        instance = next(i for i in plan.instances if i.name == name)
        state = State.load(plan.state_dir / "state.json")
        release = Path(state.instances[name]["release"])
        env = {**os.environ, **plan.env,
               "PROMETHEUS_MULTIPROC_DIR": str(plan.state_dir / "metrics" / name),
               "WAYMARK_NODE_LOG": str(plan.state_dir / "logs" / f"{name}.log")}
        launcher = subprocess.run(
            ["/bin/sh", "-c", 'setsid "$@" >>"$WAYMARK_NODE_LOG" 2>&1 </dev/null & echo $!',
             "sh", *plan.render(plan.command, release, instance)],
            env=env, cwd=str(plan.state_dir), capture_output=True, text=True, timeout=30,
            check=True)
        pid = int(launcher.stdout.strip())
        state.instances[name] = {"pid": pid, "release": str(release)}
        state.save(plan.state_dir / "state.json")
        problem = wait_ready(instance, pid, plan.ready_timeout)
        assert problem is None, f"{name} did not come back: {problem}"

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        try:
            stopped = self.deploy("stop", timeout=180).returncode == 0
        except subprocess.TimeoutExpired:
            stopped = False
        if not stopped:
            for entry in self.state().get("instances", {}).values():
                with contextlib.suppress(OSError):
                    os.killpg(entry["pid"], signal.SIGKILL)
        self.haproxy.stop()


def _plan(root: Path, env: dict[str, str], ports: dict[str, int], lb_port: int) -> Path:
    command = ["/usr/bin/env", f"WAYMARK_DATA_DIR={root / 'nodes'}/{{name}}",
               "{release}/bin/waymark", "serve", "--host", "{host}", "--port", "{port}",
               "--no-migrate", "--no-job-worker", "--no-backup"]
    lines = [f'state_dir = "{root / "state"}"', f'haproxy_socket = "{root / "haproxy.sock"}"',
             f'frontend_url = "http://{LOOPBACK}:{lb_port}"',
             'smoke = ["/readyz", "/healthz", "/api/v1/maps"]',
             f"command = {json.dumps(command)}",
             "drain_timeout = 10", "ready_timeout = 120", "ready_grace = 60",
             "stop_timeout = 20", "settle_seconds = 0.5", "[env]",
             *(f"{k} = {json.dumps(v)}" for k, v in env.items())]
    for name, port in ports.items():
        lines += ["[[instances]]", f'name = "{name}"', f"port = {port}"]
    path = root / "plan.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def app_env(root: Path, pg: PatroniCluster, redis: SentinelGroup, s3: SeaweedFS,
            bucket: str) -> dict[str, str]:
    """Production profile, every piece of state shared: what `check --deploy` accepts."""
    key = root / "secret" / "master.key"
    if not key.exists():
        LocalKeyFile(key)  # `waymark keys create`: the secret every node mounts
    return {
        "WAYMARK_ENV": "prod",
        "WAYMARK_SECRET_KEY": "cluster-test-" + "k" * 40,
        "WAYMARK_DATABASE_URL": pg.url(),
        "WAYMARK_REDIS_URL": redis.url,
        "WAYMARK_OBJECT_STORE_URL": s3.url(bucket, "objects"),
        "WAYMARK_BACKUP_URL": s3.url(bucket, "backup"),
        "WAYMARK_MASTER_KEY_FILE": str(key),
        # the database's own backups (pgBackRest WAL archiving) are not part of this test:
        # tests/integration/test_pg_backup.py and test_pg_dr.py run them; here the cluster
        # stands for one whose backups are done outside Waymark, so `check --deploy` passes
        "WAYMARK_POSTGRES_MANAGED": "true",
        "WAYMARK_COOKIE_SECURE": "true",
        "WAYMARK_METRICS_PORT": "0",
        "WAYMARK_METRICS_TOKEN": METRICS_TOKEN,
        "WAYMARK_TRUSTED_PROXIES": LOOPBACK,
        "WAYMARK_RATE_LIMITS": "write=off,signup=off,upload=off,anon_read=off,ws_message=off",
        "WAYMARK_LOG_LEVEL": "info",
        "WAYMARK_SNAPSHOT_DELAY_MS": "300",
        "WAYMARK_JOB_STALE_SECONDS": "10",
        "WAYMARK_PUBLIC_URL": f"http://{LOOPBACK}",
        # one bytecode cache for every process of the cluster (this machine sets
        # PYTHONDONTWRITEBYTECODE: each process would compile the whole app again)
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(root / "pycache"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": TEST_REGION,
    }


def start_cluster(root: Path) -> Cluster:
    """Bring everything up; returns once HAProxy sees every app node UP."""
    started: list[Any] = []
    try:
        pg = start_patroni_cluster()
        started.append(pg)
        redis = start_sentinel_group()
        started.append(redis)
        s3 = start_seaweedfs()
        started.append(s3)
        bucket = s3.make_bucket(f"waymark-cluster-{os.getpid()}")
        env = app_env(root, pg, redis, s3, bucket)
        ports = {name: free_port() for name in NODES}
        lb_port = free_port()
        plan = _plan(root, env, ports, lb_port)
        haproxy = start_haproxy(root, plan, lb_port, "--rate-limit", "1000000",
                                "--conn-limit", "10000")
        started.append(haproxy)
        cluster = Cluster(root, pg, redis, s3, bucket, env, plan, haproxy, ports,
                          releases(root / "releases"))
        first = cluster.deploy("release", str(cluster.releases["r1"]))
        assert first.returncode == 0, first.stdout + first.stderr
        started.append(cluster)
        for name in WORKERS:
            worker = Worker(name, {**base_env(), **env,
                                   "WAYMARK_DATA_DIR": str(root / "workers" / name)},
                            root / f"{name}.log")
            worker.start(cluster.releases["r1"])
            cluster.workers.append(worker)
        for name in NODES:
            wait_for(lambda n=name: cluster.haproxy_status(n) == "UP", 60, f"{name} UP")
        return cluster
    except BaseException:
        for part in reversed(started):
            part.stop()
        raise


def metrics_of(url: str) -> str:
    return httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                     timeout=10).text
