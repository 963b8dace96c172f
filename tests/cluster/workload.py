"""The workload of the cluster test: editors on different nodes editing the same maps,
anonymous readers fetching published snapshots, websocket viewers on every node. Every
request is logged with its time and outcome; every write the server acknowledged (2xx) is
kept, to be compared with the database at the end.

Clients behave as real ones should: creates carry a client-made id (a retried create is
recognised, never doubled), updates carry If-Match, idempotent reads are retried on a
connection failure, 502/503/504 (Retry-After honoured), writes are retried after a 503.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRYABLE = {502, 503, 504}
READ_RETRIES = 6


@dataclass
class Entry:
    t: float  # seconds since the workload started, when the request began
    client: str
    kind: str  # read | write | ws
    status: int  # HTTP status; 0 = no answer (connection failed)
    ok: bool
    final: bool  # the last attempt of this operation (False: it was retried)
    detail: str = ""
    retry_after: str | None = None


@dataclass
class Log:
    start: float = field(default_factory=time.monotonic)
    entries: list[Entry] = field(default_factory=list)
    acked: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # id -> (v, props)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, entry: Entry) -> None:
        with self.lock:
            self.entries.append(entry)

    def ack(self, feature_id: str, version: int, properties: dict[str, Any]) -> None:
        with self.lock:
            known = self.acked.get(feature_id)
            if known is None or version >= known[0]:
                self.acked[feature_id] = (version, properties)


@dataclass
class Target:
    """The shared map everyone works on."""

    map_id: str
    layer_id: str
    tokens: list[str]  # write tokens of the editors (map members)

    @property
    def features(self) -> str:
        return f"/api/v1/maps/{self.map_id}/layers/{self.layer_id}/features"

    @property
    def data(self) -> str:
        return f"/api/v1/maps/{self.map_id}/layers/{self.layer_id}/data"


class Stop(threading.Event):
    pass


def _retry_after(response: httpx.Response | None) -> float:
    try:
        return min(5.0, float(response.headers.get("retry-after", "0.5"))) if response else 0.3
    except ValueError:
        return 0.5


# ---- editors -------------------------------------------------------------------------------
class Editor(threading.Thread):
    """Creates its own features and edits them, and edits the ones everybody edits
    (conflicts answer 412 and are normal). Talks to its own node; to the load balancer
    while that node is down."""

    def __init__(self, name: str, node_url: str, lb_url: str, token: str, target: Target,
                 shared: list[str], log: Log, stop: Stop, seed: int) -> None:
        super().__init__(name=name, daemon=True)
        self.node_url, self.lb_url = node_url, lb_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.target, self.shared, self.log, self.stop_event = target, shared, log, stop
        self.rng = random.Random(seed)
        self.mine: dict[str, int] = {}  # own feature id -> last acknowledged version
        self.n = 0
        self.node_down_until = 0.0

    def run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=15) as http:
            self.http = http
            while not self.stop_event.is_set():
                self.n += 1
                roll = self.rng.random()
                if roll < 0.35 or not self.mine:
                    self._create()
                elif roll < 0.7:
                    self._update(self.rng.choice(list(self.mine)), own=True)
                else:
                    self._update(self.rng.choice(self.shared), own=False)
                self.stop_event.wait(0.05)

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        """To its own node; to the load balancer (for a while) when that node does not
        answer: moving to another node is the client's fail-over, not a failed request."""
        if time.monotonic() >= self.node_down_until:
            try:
                return self.http.request(method, self.node_url + path, **kw)
            except httpx.TransportError:
                self.node_down_until = time.monotonic() + 2
        t = self.log.now()
        try:
            return self.http.request(method, self.lb_url + path, **kw)
        except httpx.TransportError as exc:
            self.log.add(Entry(t, self.name, "write" if method != "GET" else "read", 0, False,
                               True, f"{method} via the load balancer: {type(exc).__name__}"))
        return None

    def _write(self, method: str, path: str, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> httpx.Response | None:
        """One write, retried while the answer is 503 (or no answer), for a bounded time."""
        deadline = time.monotonic() + 60
        while True:
            t = self.log.now()
            r = self._send(method, path, json=body, headers=headers or {})
            retry = (r is None or r.status_code in RETRYABLE) and time.monotonic() < deadline \
                and not self.stop_event.is_set()
            if r is not None:
                self.log.add(Entry(t, self.name, "write", r.status_code,
                                   r.status_code < 400 or r.status_code in (409, 412),
                                   not retry, f"{method} {r.status_code}",
                                   r.headers.get("retry-after")))
            if not retry:
                return r
            time.sleep(_retry_after(r))

    def _create(self) -> None:
        fid = str(uuid.uuid4())
        props = {"by": self.name, "n": self.n}
        r = self._write("POST", self.target.features, {
            "id": fid, "geometry": {"type": "Point", "coordinates": [
                round(self.rng.uniform(-3.3, -3.1), 5), round(self.rng.uniform(55.9, 56), 5)]},
            "properties": props})
        if r is not None and r.status_code == 201:
            self._acked(fid, r.json())
        elif r is not None and r.status_code == 409:  # a retried create that had committed
            self._refresh(fid)

    def _update(self, fid: str, own: bool) -> None:
        version = self.mine.get(fid) if own else self._current_version(fid)
        if version is None:
            return
        props = {"by": self.name, "n": self.n}
        r = self._write("PATCH", f"{self.target.features}/{fid}", {"properties": props},
                        {"If-Match": f'"{version}"'})
        if r is not None and r.status_code == 200:
            self._acked(fid, r.json(), own)
        elif r is not None and r.status_code == 412 and own:
            self._refresh(fid)  # a retried update that had committed: read what is there

    def _acked(self, fid: str, feature: dict[str, Any], own: bool = True) -> None:
        self.log.ack(fid, feature["version"], feature["properties"])
        if own:
            self.mine[fid] = feature["version"]

    def _refresh(self, fid: str) -> None:
        r = self._send("GET", f"{self.target.features}/{fid}")
        if r is not None and r.status_code == 200:
            self.mine[fid] = r.json()["version"]

    def _current_version(self, fid: str) -> int | None:
        r = self._send("GET", f"{self.target.features}/{fid}")
        return r.json()["version"] if r is not None and r.status_code == 200 else None


# ---- anonymous readers -------------------------------------------------------------------------
class Reader(threading.Thread):
    """An embed or a shared link: the map, then its layer's published snapshot, through the
    load balancer, anonymously. Idempotent: retried."""

    def __init__(self, name: str, lb_url: str, target: Target, log: Log, stop: Stop) -> None:
        super().__init__(name=name, daemon=True)
        self.lb_url, self.target, self.log, self.stop_event = lb_url, target, log, stop
        self.snapshots = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.lb_url, timeout=15) as http:
            while not self.stop_event.is_set():
                r = self._get(http, f"/api/v1/maps/{self.target.map_id}")
                layer = next((la for la in r.json()["layers"]
                              if la["id"] == self.target.layer_id), None) if r else None
                if layer and layer.get("snapshot_url") and \
                        self._get(http, layer["snapshot_url"]) is not None:
                    self.snapshots += 1
                self.stop_event.wait(0.05)

    def _get(self, http: httpx.Client, path: str) -> httpx.Response | None:
        for attempt in range(READ_RETRIES):
            t, last = self.log.now(), attempt == READ_RETRIES - 1
            try:
                r = http.get(path)
            except httpx.TransportError as exc:
                self.log.add(Entry(t, self.name, "read", 0, False, last, type(exc).__name__))
                time.sleep(0.2 * 2 ** attempt)
                continue
            ok = r.status_code == 200
            retry = r.status_code in RETRYABLE and not last
            self.log.add(Entry(t, self.name, "read", r.status_code, ok, not retry,
                               f"GET {path.split('?')[0][-40:]}", r.headers.get("retry-after")))
            if not retry:
                return r if ok else None
            time.sleep(max(0.2 * 2 ** attempt, _retry_after(r)))
        return None


# ---- websocket viewers ---------------------------------------------------------------------------
class Viewer(threading.Thread):
    """A browser on one node's websocket: keeps the layer's features (id -> version) from the
    events, refetches on "resync" (as the front end does), reconnects with ?since= when the
    connection ends, to the next node while its own is down."""

    def __init__(self, name: str, node_urls: list[str], lb_url: str, token: str,
                 target: Target, log: Log, stop: Stop) -> None:
        super().__init__(name=name, daemon=True)
        self.node_urls, self.lb_url, self.token = node_urls, lb_url, token
        self.target, self.log, self.stop_event = target, log, stop
        self.features: dict[str, int] = {}
        self.seq: int | None = None
        self.connects = 0
        self.resyncs = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        turn = 0
        while not self.stop_event.is_set():
            base = self.node_urls[turn % len(self.node_urls)]
            since = f"?since={self.seq}" if self.seq is not None else ""
            url = base.replace("http://", "ws://") + \
                f"/api/v1/maps/{self.target.map_id}/ws{since}"
            try:
                with connect(url, additional_headers={"Authorization": f"Bearer {self.token}"},
                             open_timeout=5, close_timeout=2) as ws:
                    self.connects += 1
                    self._listen(ws)
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                self.log.add(Entry(self.log.now(), self.name, "ws", 0, False, True,
                                   f"{base}: {type(exc).__name__}"))
                turn += 1  # this node is away: try the next one
                self.stop_event.wait(0.3)

    def _listen(self, ws) -> None:  # type: ignore[no-untyped-def]
        last_ping = time.monotonic()
        while not self.stop_event.is_set():
            if time.monotonic() - last_ping > 5:
                ws.send('{"type":"ping"}')
                last_ping = time.monotonic()
            try:
                raw = ws.recv(timeout=1)
            except TimeoutError:
                continue
            self._on(json.loads(raw))

    def _on(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "hello":
            if self.seq is None or msg.get("replay") is None:
                self._refetch()
            self.seq = msg["seq"] if self.seq is None or msg.get("replay") is None else self.seq
        elif kind == "resync":
            self.seq = msg.get("seq")
            self._refetch()
        elif kind == "edit":
            seq = msg.get("seq")
            if seq is not None and self.seq is not None and seq <= self.seq:
                return
            self.seq = seq if seq is not None else self.seq
            self._apply(msg)

    def _apply(self, event: dict[str, Any]) -> None:
        op, feature = event.get("op"), event.get("feature") or {}
        if event.get("layer") not in (None, self.target.layer_id):
            return
        with self.lock:
            if op in ("feature.create", "feature.update") and feature and \
                    feature["version"] > self.features.get(feature["id"], 0):
                self.features[feature["id"]] = feature["version"]
            elif op == "feature.delete":
                self.features.pop(event.get("id"), None)
        if op in ("layer.reload", "map.reload"):
            self._refetch()

    def _refetch(self) -> None:
        self.resyncs += 1
        for _ in range(READ_RETRIES):
            try:
                r = httpx.get(self.lb_url + self.target.data, timeout=15,
                              headers={"Authorization": f"Bearer {self.token}"})
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            if r.status_code == 200:
                fresh = {f["id"]: f["version"] for f in r.json()["features"]}
                with self.lock:  # never go back: events newer than the fetch may be in
                    for fid, version in fresh.items():
                        if version > self.features.get(fid, 0):
                            self.features[fid] = version
                return
            time.sleep(_retry_after(r))

    def state(self) -> dict[str, int]:
        with self.lock:
            return dict(self.features)


# ---- measuring -----------------------------------------------------------------------------------
@dataclass
class Fault:
    name: str
    start: float
    end: float = 0.0  # when the fault's recovery was observed
    notes: dict[str, Any] = field(default_factory=dict)


def windows(faults: list[Fault], margin: float = 3.0) -> list[tuple[float, float]]:
    """Each fault's span for counting failures: from its start until its recovery was
    observed plus ``margin``, but never into the next fault."""
    spans = []
    for i, fault in enumerate(faults):
        end = fault.end + margin
        if i + 1 < len(faults):
            end = min(end, faults[i + 1].start)
        spans.append((fault.start, end))
    return spans


def window(entries: list[Entry], start: float, end: float, kind: str | None = None
           ) -> dict[str, Any]:
    """Failed requests (not-ok attempts) of ``kind`` begun in [start, end]: how many, their
    statuses, and the span from the first failure to the last."""
    failed = [e for e in entries if start <= e.t <= end and not e.ok
              and (kind is None or e.kind == kind)]
    by_status: dict[int, int] = defaultdict(int)
    for e in failed:
        by_status[e.status] += 1
    return {"failed_attempts": len(failed),
            "failed_final": sum(1 for e in failed if e.final),
            "statuses": dict(sorted(by_status.items())),
            "window_s": round(failed[-1].t - failed[0].t, 2) if failed else 0.0,
            "first_s": round(failed[0].t, 2) if failed else None}
