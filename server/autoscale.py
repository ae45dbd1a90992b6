"""Replica auto-scaling: the cluster manager adds and removes readers to follow load.

The policy lives in ``cluster.json`` under ``"autoscale"`` (``borealis autoscale set``):

    {"enabled": true, "min_readers": 1, "max_readers": 4,
     "metric": "connections" | "cpu",       # per reader: open sessions | CPU percent
     "target": 20.0,                        # the average the policy aims for
     "scale_out_cooldown": 60.0,            # seconds after a scale-out before the next one
     "scale_in_cooldown": 300.0,            # seconds after any scaling before a scale-in
     "tier": 15}                            # failover tier of the readers it adds

Target tracking (as AWS Application Auto Scaling does for Aurora replicas): with ``n``
readers whose loads sum to ``total``, the wanted count is ``ceil(total / target)``
clamped to [min, max].  One reader is added when more are wanted and the scale-out
cooldown has passed; one is removed when fewer are wanted and both cooldowns have passed.
Since ``ceil`` wants fewer readers only when the load would still fit ``n - 1`` readers
at the target, a scale-in never causes the next scale-out by itself.  Below the minimum
or above the maximum the count is corrected without waiting for a cooldown.

Only readers the policy added itself (``InstanceConf.autoscaled``) are ever removed,
the least loaded first; readers made with ``borealis instance add`` stay.  Added readers
are named ``auto1``, ``auto2``, ... (the first free name) and go through the same
``Cluster.add_instance`` / ``remove_instance`` as the CLI, so the reader endpoint (and
every "exclude" custom endpoint) follows on the proxy's next reload.

``decide`` is pure; ``Autoscaler`` samples the readers (admin port for sessions,
``/proc/<pid>/stat`` for CPU) once per ``INTERVAL`` and runs a decision in a worker
thread, so heartbeats and failover go on meanwhile.  Each action is a manager event:
``{"at", "kind": "scale_out"|"scale_in", "instance", "reason", "readers", "seconds", "ok"}``;
after one that failed (``ok: false``, ``error``) nothing is tried for ``FAILURE_BACKOFF`` s.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import structlog

from server.config import ClusterConf
from server.launcher import MAX_READERS, Cluster
from server.status import instance_state
from storage.mtls import InternalTls

INTERVAL = 1.0
FAILURE_BACKOFF = 30.0  # seconds without scaling after an add or remove that failed
METRICS = ("connections", "cpu")
NAME_PREFIX = "auto"

log = structlog.get_logger("autoscale")


class AutoscaleError(ValueError):
    """A policy that cannot be used; the message is fit for a terminal."""


@dataclass
class AutoscalePolicy:
    enabled: bool = True
    min_readers: int = 1
    max_readers: int = MAX_READERS
    metric: str = "connections"
    target: float = 100.0
    scale_out_cooldown: float = 60.0
    scale_in_cooldown: float = 300.0
    tier: int = 15

    def check(self) -> "AutoscalePolicy":
        if self.metric not in METRICS:
            raise AutoscaleError(f"metric must be one of {', '.join(METRICS)}")
        if not 0 <= self.min_readers <= self.max_readers <= MAX_READERS:
            raise AutoscaleError(f"need 0 <= min ({self.min_readers}) <= max ({self.max_readers}) <= {MAX_READERS}")
        if not self.target > 0 or (self.metric == "cpu" and self.target > 100):
            raise AutoscaleError("target must be > 0 (and at most 100 for cpu)")
        if self.scale_out_cooldown < 0 or self.scale_in_cooldown < 0:
            raise AutoscaleError("cooldowns must be >= 0")
        if not 0 <= self.tier <= 15:
            raise AutoscaleError("tier must be 0..15")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AutoscalePolicy":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise AutoscaleError(f"unknown autoscale setting(s): {', '.join(sorted(unknown))}")
        return cls(**d).check()


@dataclass(frozen=True)
class ReaderSample:
    """One reader as the autoscaler saw it in one tick."""

    name: str
    autoscaled: bool
    available: bool
    load: float  # sessions or CPU percent; 0 when not available


@dataclass(frozen=True)
class Decision:
    action: str  # "add" | "remove" | "none"
    reason: str
    wanted: int
    instance: str | None = None  # the reader to remove


@dataclass
class Cooldowns:
    last_out: float = -math.inf  # monotonic time of the last scale-out (start)
    last_in: float = -math.inf


def wanted_readers(policy: AutoscalePolicy, samples: list[ReaderSample]) -> tuple[int, float | None]:
    """(wanted reader count, average load over available readers or None)."""
    up = [s for s in samples if s.available]
    if not up:
        return max(policy.min_readers, min(len(samples), policy.max_readers)), None
    total = sum(s.load for s in up)
    want = math.ceil(total / policy.target - 1e-9)
    return min(max(want, policy.min_readers), policy.max_readers), total / len(up)


def decide(policy: AutoscalePolicy, samples: list[ReaderSample], now: float, cd: Cooldowns) -> Decision:
    """What to do now (pure).  ``samples``: every reader of cluster.json."""
    n = len(samples)
    want, avg = wanted_readers(policy, samples)
    shown = "n/a" if avg is None else f"{avg:.1f}"
    if n < policy.min_readers:
        return Decision("add", f"{n} readers < min {policy.min_readers}", want)
    removable = sorted((s for s in samples if s.autoscaled), key=lambda s: (s.available, s.load, _order(s.name)))
    if n > policy.max_readers:
        if removable:
            return Decision("remove", f"{n} readers > max {policy.max_readers}", want, removable[0].name)
        return Decision("none", f"{n} readers > max, none added by autoscaling", want)
    if avg is None:
        return Decision("none", "no reader answers", want)
    if want > n:
        if now - cd.last_out < policy.scale_out_cooldown:
            return Decision("none", "scale-out cooldown", want)
        return Decision("add", f"average {policy.metric} {shown} > target {policy.target:g}", want)
    if want < n:
        if now - cd.last_out < policy.scale_out_cooldown or now - cd.last_in < policy.scale_in_cooldown:
            return Decision("none", "scale-in cooldown", want)
        if not removable:
            return Decision("none", "no reader added by autoscaling to remove", want)
        return Decision("remove", f"average {policy.metric} {shown} fits {n - 1} readers at target {policy.target:g}",
                        want, removable[0].name)
    return Decision("none", "on target", want)


def _order(name: str) -> int:
    """Newest auto reader first among equals: auto12 before auto3."""
    tail = name[len(NAME_PREFIX):]
    return -int(tail) if tail.isdigit() else 0


def next_name(conf: ClusterConf) -> str:
    taken = {i.name for i in conf.instances} | {e.name for e in conf.endpoints} | {s.name for s in conf.storage_nodes}
    k = 1
    while f"{NAME_PREFIX}{k}" in taken:
        k += 1
    return f"{NAME_PREFIX}{k}"


class CpuMeter:
    """CPU percent of processes between two calls (``/proc/<pid>/stat`` utime + stime)."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (cpu seconds, monotonic)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _cpu_seconds(self, pid: int) -> float | None:
        try:
            parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(parts[11]) + int(parts[12])) / self._tick  # utime, stime (fields 14, 15)

    def percent(self, pid: int) -> float:
        now, cpu = time.monotonic(), self._cpu_seconds(pid)
        if cpu is None:
            self._last.pop(pid, None)
            return 0.0
        prev = self._last.get(pid)
        self._last[pid] = (cpu, now)
        if prev is None or now <= prev[1]:
            return 0.0
        return max(0.0, 100.0 * (cpu - prev[0]) / (now - prev[1]))


class Autoscaler:
    """Runs the policy of one cluster directory; ``tick`` is called by the manager's loop."""

    def __init__(self, data_dir: Path, record: Callable[[dict], None]) -> None:
        self.cluster = Cluster(data_dir)  # its own: scaling runs in a worker thread
        self.tls = InternalTls.load(data_dir)  # admin ports: mutual TLS
        self.record = record
        self.cooldowns = Cooldowns()
        self.cpu = CpuMeter()
        self._last_tick = 0.0
        self._task: asyncio.Future | None = None
        self._retry_after = 0.0
        self.last: dict[str, Any] = {}  # for run/manager.state.json -> `borealis status`

    async def sample(self, conf: ClusterConf, policy: AutoscalePolicy) -> list[ReaderSample]:
        readers = conf.readers()
        states = await asyncio.gather(*(instance_state(conf.host, r.admin_port, 1.0, tls=self.tls) for r in readers))
        out = []
        for r, st in zip(readers, states):
            up = st is not None and st.role == "reader" and st.state == "available"
            if policy.metric == "cpu":
                pid = st.pid if st is not None else None
                load = self.cpu.percent(pid) if pid else 0.0
            else:
                load = float(st.connections) if st is not None else 0.0
            out.append(ReaderSample(r.name, r.autoscaled, up, load if up else 0.0))
        return out

    async def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_tick < INTERVAL:
            return
        self._last_tick = now
        if self._task is not None and not self._task.done():
            return  # a scale-out / scale-in is still running
        if now < self._retry_after:
            return
        try:
            conf = self.cluster.conf
        except (OSError, ValueError):
            return
        if not conf.autoscale:
            self.last = {}
            return
        try:
            policy = AutoscalePolicy.from_dict(conf.autoscale)
        except (AutoscaleError, TypeError) as e:
            self.last = {"error": str(e)}
            return
        if not policy.enabled:
            self.last = {"enabled": False}
            return
        samples = await self.sample(conf, policy)
        d = decide(policy, samples, now, self.cooldowns)
        want, avg = wanted_readers(policy, samples)
        self.last = {"enabled": True, "readers": len(samples), "wanted": want,
                     "average": None if avg is None else round(avg, 2), "metric": policy.metric,
                     "loads": {s.name: round(s.load, 1) for s in samples}, "decision": d.reason}
        if d.action == "add":
            self.cooldowns.last_out = now
            name = next_name(conf)
            self._start("scale_out", name, policy.tier, d.reason, len(samples))
        elif d.action == "remove" and d.instance is not None:
            self.cooldowns.last_in = now
            self._start("scale_in", d.instance, policy.tier, d.reason, len(samples))

    def _start(self, *args: Any) -> None:
        self._task = asyncio.get_running_loop().run_in_executor(None, self._act, *args)
        # the callback runs on the loop's thread: events are recorded by one thread only
        self._task.add_done_callback(lambda f: self._done(f.result()))

    def _done(self, event: dict) -> None:
        if not event.get("ok"):
            self._retry_after = time.monotonic() + FAILURE_BACKOFF
        self.record(event)

    def _act(self, kind: str, name: str, tier: int, reason: str, readers: int) -> dict:
        """Add or remove one reader (blocking: runs in a worker thread); returns the event."""
        t0 = time.monotonic()
        event: dict[str, Any] = {"at": round(time.time(), 3), "kind": kind, "instance": name, "reason": reason,
                                 "readers": readers}
        log.warning("autoscale_" + kind, instance=name, reason=reason, readers=readers)
        try:
            if kind == "scale_out":
                self.cluster.add_instance(name, tier, autoscaled=True)
            else:
                self.cluster.remove_instance(name)
            event["ok"] = True
        except Exception as e:  # noqa: BLE001 -- reported as an event; the policy tries again later
            event["ok"] = False
            event["error"] = str(e)
            log.error("autoscale_failed", kind=kind, instance=name, error=str(e))
        event["seconds"] = round(time.monotonic() - t0, 3)
        return event
