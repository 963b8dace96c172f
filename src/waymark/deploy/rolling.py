"""Rolling release and rollback of a plan's instances, one at a time, through HAProxy.

For each instance: drain -> wait for in-flight requests -> maint -> stop (SIGTERM) -> start the
new release -> wait for its /readyz -> ready -> wait for HAProxy to see it UP. Before any
instance is touched the new release runs its migrations (expand-only, so the running release
keeps working: docs/operations/deploy.md) and `waymark check --deploy`. If a new instance does
not become ready, or the smoke checks through the load balancer fail, every instance already
moved is put back on the previous release.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waymark.deploy import processes
from waymark.deploy.haproxy import RuntimeApi
from waymark.deploy.plan import DeployError, Instance, Plan

Report = Callable[[str], None]


@dataclass
class State:
    """What runs where, kept in <state_dir>/state.json."""

    current: str | None = None
    previous: str | None = None
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> pid, release

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(raw.get("current"), raw.get("previous"), raw.get("instances", {}))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))
        os.replace(tmp, path)


class Deployer:
    def __init__(self, plan: Plan, report: Report = print) -> None:
        self.plan = plan
        self.report = report
        self.api = RuntimeApi(plan.haproxy_socket, plan.backend)
        self.state_path = plan.state_dir / "state.json"
        self.log_dir = plan.state_dir / "logs"

    # ---- public commands -------------------------------------------------------------
    def release(self, release: Path) -> State:
        """Roll every instance onto ``release``; roll back automatically on failure."""
        release = release.resolve()
        if not (release / "bin").is_dir():
            raise DeployError(f"{release} is not a release directory (no bin/ inside)")
        with self._locked():
            state = State.load(self.state_path)
            self._prepare(release)
            previous = Path(state.current) if state.current else None
            if not any(processes.alive(e.get("pid")) for e in state.instances.values()):
                return self._cold_start(state, release)
            moved: list[Instance] = []
            for instance in self.plan.instances:
                problem = self._replace(state, instance, release)
                if problem:
                    self.report(f"{instance.name}: new release failed: {problem}")
                    self._roll_back(state, previous, [instance, *reversed(moved)])
                    raise DeployError(f"release {release.name} failed on {instance.name} "
                                      f"({problem}); rolled back to "
                                      f"{previous.name if previous else 'nothing'}")
                moved.append(instance)
            failures = self.smoke()
            if failures:
                self._roll_back(state, previous, list(reversed(moved)))
                raise DeployError(f"smoke checks failed ({'; '.join(failures)}); "
                                  f"rolled back to {previous.name if previous else 'nothing'}")
            if state.current != str(release):
                state.previous, state.current = state.current, str(release)
            state.save(self.state_path)
            self.report(f"release {release.name} is live on {len(moved)} instance(s)")
            return state

    def rollback(self) -> State:
        """Manual rollback: roll the previous release back in (it becomes the current one)."""
        state = State.load(self.state_path)
        if not state.previous:
            raise DeployError("no previous release recorded: nothing to roll back to")
        return self.release(Path(state.previous))

    def stop_all(self) -> None:
        """Stop every instance (drained first); HAProxy itself is left alone."""
        with self._locked():
            state = State.load(self.state_path)
            for instance in self.plan.instances:
                self._take_out(instance)
                processes.stop(state.instances.get(instance.name, {}).get("pid"),
                               self.plan.stop_timeout)
                state.instances.pop(instance.name, None)
            state.save(self.state_path)

    def smoke(self) -> list[str]:
        """GET each smoke path through the load balancer; the failures, if any."""
        failures = []
        for path in self.plan.smoke:
            status = processes.http_status(self.plan.frontend_url + path)
            if status != 200:
                failures.append(f"GET {path} -> {status or 'no answer'}")
        return failures

    # ---- steps -----------------------------------------------------------------------
    def _prepare(self, release: Path) -> None:
        """Migrate (expand-only) and validate the target environment with the new release."""
        self.plan.state_dir.mkdir(parents=True, exist_ok=True)
        for name, template in (("migrate", self.plan.migrate), ("check", self.plan.check)):
            if not template:
                continue
            cmd = self.plan.render(template, release)
            result = subprocess.run(cmd, env={**os.environ, **self.plan.env},
                                    cwd=str(self.plan.state_dir), capture_output=True, text=True,
                                    timeout=600, check=False)
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip()[-2000:]
                raise DeployError(f"{name} failed with release {release.name}; no instance "
                                  f"was touched:\n{detail}")
            self.report(f"{name}: ok")

    def _cold_start(self, state: State, release: Path) -> State:
        """Nothing runs yet (first deploy, or after `stop`): start every instance at once."""
        pids = {i.name: processes.start(self.plan, i, release, self.log_dir)
                for i in self.plan.instances}
        state.instances = {name: {"pid": pid, "release": str(release)}
                           for name, pid in pids.items()}
        state.save(self.state_path)
        problems = {i.name: processes.wait_ready(i, pids[i.name], self.plan.ready_timeout,
                                              self.plan.ready_grace)
                    for i in self.plan.instances}
        failed = {name: p for name, p in problems.items() if p}
        if failed:
            for pid in pids.values():
                processes.stop(pid, self.plan.stop_timeout)
            state.instances = {}
            state.save(self.state_path)
            raise DeployError(f"release {release.name} did not start: "
                              + "; ".join(f"{n}: {p}" for n, p in failed.items()))
        for instance in self.plan.instances:
            self.api.set_state(instance.name, "ready")
            if not self.api.wait_status(instance.name, "UP", self.plan.ready_timeout):
                raise DeployError(f"HAProxy did not see {instance.name} UP")
        failures = self.smoke()
        if failures:
            raise DeployError(f"smoke checks failed: {'; '.join(failures)}")
        if state.current != str(release):
            state.previous, state.current = state.current, str(release)
        state.save(self.state_path)
        self.report(f"release {release.name} started on {len(pids)} instance(s)")
        return state

    def _take_out(self, instance: Instance) -> None:
        """Stop new requests to ``instance`` and wait (bounded) for the ones in flight."""
        self.api.set_state(instance.name, "drain")
        if not self.api.wait_drained(instance.name, self.plan.drain_timeout):
            self.report(f"{instance.name}: connections still open after "
                        f"{self.plan.drain_timeout:g}s (websockets?); stopping anyway")
        self.api.set_state(instance.name, "maint")  # also closes idle pooled connections

    def _replace(self, state: State, instance: Instance, release: Path) -> str | None:
        """Move one instance onto ``release``; None on success, else what went wrong
        (the instance is then out of rotation, with no process)."""
        t0 = time.monotonic()
        self._take_out(instance)
        entry = state.instances.get(instance.name, {})
        processes.stop(entry.get("pid"), self.plan.stop_timeout)
        pid = processes.start(self.plan, instance, release, self.log_dir)
        state.instances[instance.name] = {"pid": pid, "release": str(release)}
        state.save(self.state_path)
        problem = processes.wait_ready(instance, pid, self.plan.ready_timeout,
                                         self.plan.ready_grace)
        if problem:
            processes.stop(pid, self.plan.stop_timeout)
            state.instances.pop(instance.name, None)
            state.save(self.state_path)
            return problem
        self.api.set_state(instance.name, "ready")
        if not self.api.wait_status(instance.name, "UP", self.plan.ready_timeout):
            return "HAProxy did not see the server UP"
        time.sleep(self.plan.settle_seconds)
        self.report(f"{instance.name}: {release.name} ready (pid {pid}, "
                    f"{time.monotonic() - t0:.1f}s)")
        return None

    def _roll_back(self, state: State, previous: Path | None,
                   instances: list[Instance]) -> None:
        if previous is None:
            state.save(self.state_path)
            self.report("no previous release: the failed instances stay out of rotation")
            return
        for instance in instances:
            problem = self._replace(state, instance, previous)
            if problem:  # keep going: put back as many as possible, then say so
                self.report(f"{instance.name}: ROLLBACK FAILED too: {problem}")
        state.save(self.state_path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One deploy at a time per plan."""
        self.plan.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.plan.state_dir / "deploy.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeployError("another deploy is running for this plan") from None
            yield
