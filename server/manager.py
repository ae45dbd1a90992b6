"""The cluster manager: ``python -m server.manager --data-dir DIR`` (started by ``borealis up``
after the endpoints, stopped first by ``borealis down``).

It watches the writer and moves the writer role when the writer fails:

    every HEARTBEAT_INTERVAL (0.2 s)
        GetInstanceState on the writer's admin port (timeout HEARTBEAT_TIMEOUT)
        -> answered: the writer is alive (any state: it may be recovering)
        -> not answered: one miss; MAX_MISSES (3) in a row, or the writer's process gone,
           means the writer has failed                               (``WriterWatch``)

    failover (unplanned)
        1. ask every reader for its InstanceState; the target is the healthy ("available")
           reader with the lowest tier, ties -> highest applied_lsn     (``choose_target``)
        2. SIGKILL the old writer's process if it is still there (it may be frozen; a
           fenced writer would exit with code 3 anyway)
        3. promote the target in place: ``Promote`` on its admin port (server.promote); the
           same process runs storage recovery with a new epoch (which fences the old
           writer), brings its cache to the recovered VDL, ends its reader sessions and
           serves as the writer, warm cache and all
        4. cluster.json: target -> "writer", old writer -> "reader" (under cluster.lock)
           -- the proxy closes its writer-endpoint connections to the old writer and sends
           new ones to the target; readers re-read cluster.json when their redo stream
           drops and subscribe to the target
       If the in-place promotion fails or does not answer within PROMOTE_TIMEOUT (or
       BOREALIS_PROMOTE_IN_PLACE=0), the fallback is a restart: roles in cluster.json, then
       the target's process is killed and started again as writer (cold cache).
       With no healthy reader the writer is restarted in place instead.  The old writer is
       not restarted: ``borealis up`` brings it back, as a reader.

    replica auto-scaling (``server.autoscale``): once a second, when cluster.json holds an
       enabled policy, readers are sampled and one is added or removed in a worker thread

    switchover (planned, ``borealis failover [--target NAME]``): like failover, but the old
       writer gets SIGTERM (it finishes in-flight commits) and is restarted as a reader
       once the target serves (the CLI gets its answer before that restart).  The CLI asks a running manager by writing
       ``run/manager.request.json`` ``{"id", "target"}``; the manager answers in its state
       file under ``"requests": {id: event}``.

Files:

    run/manager.state.json   {"pid", "writer", "misses", "rtt_ms", "requests": {id: event},
                              "autoscale": {"readers", "wanted", "average", "metric", "loads",
                                            "decision"}}
    run/manager.events.json  the last EVENTS_KEPT events, oldest first
    logs/manager.log         every event, one JSON line prefixed "event " (also the
                             process's own structlog output)

An event: ``{"at": unix time, "kind": "failover"|"switchover"|"restart", "from", "to",
"reason", "seconds", "in_place"}`` -- ``seconds`` from the decision to the new writer accepting
connections (``ok: false`` and ``error`` when it did not); ``in_place``: promoted without a
restart (then ``promotion`` holds what the instance reported: recovered VDL, tables kept and
dropped, commits applied from its buffer or read back, sessions closed, step timings;
otherwise ``promote_error`` says why the restart path was taken); auto-scaling adds
``{"kind": "scale_out"|"scale_in", "instance", "reason", "readers", "seconds", "ok"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import uvloop

from server.autoscale import Autoscaler
from server.config import ClusterConf, InstanceConf
from server.launcher import Cluster, accepts
from server.logs import configure
from server import replication as R
from server.replication import InstanceState
from server.heartbeat import heartbeat_path, ping
from server.status import instance_state
from storage.mtls import InternalTls

HEARTBEAT_INTERVAL = 0.2
HEARTBEAT_TIMEOUT = 0.4
MAX_MISSES = 3
# A writer whose process is running (not stopped, not gone) but whose event loop is busy with
# a long statement gets this many misses (~15 s) before it counts as failed: Python instances
# answer heartbeats on the same loop that executes queries.
BUSY_MISSES = 25
LOOP_STUCK = 120.0  # seconds an instance's event loop may stay busy before it counts as hung
READY_TIMEOUT = 30.0
PROMOTE_TIMEOUT = 20.0  # seconds an in-place promotion may take before the restart fallback
GRACEFUL_STOP = 10.0
EVENTS_KEPT = 50
STATE_FILE = "manager.state.json"
EVENTS_FILE = "manager.events.json"
REQUEST_FILE = "manager.request.json"

log = structlog.get_logger("manager")


class FailoverError(Exception):
    """A switchover could not be done; the message is fit for a terminal."""


@dataclass
class WriterWatch:
    """Heartbeat bookkeeping for the current writer (pure: no I/O)."""

    writer: str = ""
    misses: int = 0

    def step(self, writer: str, answered: bool, process_alive: bool, process_running: bool = False) -> bool:
        """Record one heartbeat; True when the writer counts as failed.  ``process_running``:
        the process exists and is runnable (busy, not frozen), so it gets a longer grace."""
        if writer != self.writer:
            self.writer, self.misses = writer, 0
        if answered:
            self.misses = 0
            return False
        self.misses += 1
        if not process_alive:
            return True
        return self.misses >= (BUSY_MISSES if process_running else MAX_MISSES)


def _process_runnable(pid: int) -> bool:
    """True if the process is running or sleeping (not stopped by a signal, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] in ("R", "S", "D")


def choose_target(candidates: list[tuple[InstanceConf, InstanceState | None]]) -> InstanceConf | None:
    """The healthy reader to promote: lowest tier, then most caught up, then name.  A
    reader of cluster.json that already serves as writer (promoted in place, but the
    manager stopped before it recorded that) is taken first: asking it again is a no-op."""
    promoted = [i for i, st in candidates if st is not None and st.role == "writer" and st.state == "available"]
    if promoted:
        return promoted[0]
    healthy = [(i, st) for i, st in candidates
               if st is not None and st.role == "reader" and st.state == "available"]
    if not healthy:
        return None
    return min(healthy, key=lambda p: (p[0].tier, -p[1].applied_lsn, p[0].name))[0]  # type: ignore[union-attr]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_events(data_dir: Path) -> list[dict]:
    try:
        return json.loads((data_dir / "run" / EVENTS_FILE).read_text())
    except (OSError, ValueError):
        return []


def record_event(data_dir: Path, event: dict) -> None:
    """Append ``event`` to logs/manager.log and run/manager.events.json."""
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    with open(data_dir / "logs" / "manager.log", "a") as f:
        f.write("event " + json.dumps(event) + "\n")
    events = (read_events(data_dir) + [event])[-EVENTS_KEPT:]
    _write_json(data_dir / "run" / EVENTS_FILE, events)


class Manager:
    """Failover and switchover over one cluster directory (the process loop is ``run``)."""

    def __init__(self, data_dir: Path) -> None:
        self.cluster = Cluster(data_dir)
        self.data_dir = self.cluster.data_dir
        self.tls = InternalTls.load(self.data_dir)  # admin ports and Promote: mutual TLS
        self.watch = WriterWatch()
        self.rtt_ms: float | None = None
        self.answers: dict[str, dict] = {}
        self.storage_down_since: dict[str, float] = {}
        self._last_storage_check = 0.0
        self._replacing: asyncio.Task | None = None
        self.autoscaler = Autoscaler(self.data_dir, lambda ev: record_event(self.data_dir, ev))

    # --- helpers -------------------------------------------------------------------
    def _kill(self, name: str, sig: int, wait: float) -> bool:
        """Signal a part and wait for it to be gone; SIGKILL after ``wait``.  True if it
        was running."""
        c = self.cluster
        pid = c.pid(name)
        if pid is None:
            return False
        c._signal(pid, sig)
        if not c._reap(name, pid, wait):
            c._signal(pid, signal.SIGKILL)
            c._reap(name, pid, 5.0)
        return True

    async def _start(self, name: str) -> None:
        """Spawn a part (its role comes from cluster.json) and wait until the new process
        (its pid, on the admin port) is available and its pg port accepts connections --
        the port alone could still be the killed process's socket going away."""
        c = self.cluster
        part = c.part(name)
        c._pid_file(name).unlink(missing_ok=True)
        pid = c._spawn(part)
        conf = c.conf
        inst = conf.instance(name)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if c.pid(name) is None:
                raise FailoverError(f"{name} exited during start-up (log {c.log_path(name)})")
            st = await instance_state(conf.host, inst.admin_port, 0.5, tls=self.tls)
            if st is not None and st.pid == pid and st.state == "available" and accepts(conf.host, inst.port):
                return
            if time.monotonic() > deadline:
                raise FailoverError(f"{name} did not accept connections within {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)

    async def _promote(self, inst: InstanceConf, timeout: float = PROMOTE_TIMEOUT) -> R.Promoted:
        """Ask a reader to become the writer in place (server.promote); its answer, or a
        failed one when it does not answer in time."""
        host = self.cluster.conf.host
        req = time.time_ns() & 0x7FFFFFFF
        writer = None
        try:
            async with asyncio.timeout(timeout + 2.0):
                reader, writer = await self.tls.open_connection(host, inst.admin_port)
                writer.write(R.ADMIN_REQUESTS.frame(R.Promote(req=req, timeout=timeout)))
                dec = R.ADMIN_REPLIES.decoder()
                while True:
                    data = await reader.read(65536)
                    if not data:
                        return R.Promoted(req=req, ok=False, error="admin connection closed")
                    for m in dec.feed(data):
                        if isinstance(m, R.Promoted) and m.req == req:
                            return m
        except (OSError, TimeoutError) as e:
            return R.Promoted(req=req, ok=False, error=f"no answer: {type(e).__name__} {e}")
        finally:
            if writer is not None:
                writer.close()

    async def _verify_writer(self, inst: InstanceConf) -> None:
        """The promoted instance reports role writer and its pg port accepts connections."""
        conf = self.cluster.conf
        deadline = time.monotonic() + 5.0
        while True:
            st = await instance_state(conf.host, inst.admin_port, 0.5, tls=self.tls)
            if st is not None and st.role == "writer" and st.state == "available" and accepts(conf.host, inst.port):
                return
            if time.monotonic() > deadline:
                raise FailoverError(f"{inst.name} reported a promotion but does not serve as writer")
            await asyncio.sleep(0.05)

    async def _reader_states(self, conf: ClusterConf) -> list[tuple[InstanceConf, InstanceState | None]]:
        readers = conf.readers()
        states = await asyncio.gather(*(instance_state(conf.host, r.admin_port, 1.0, tls=self.tls) for r in readers))
        return list(zip(readers, states))

    # --- moving the writer role -----------------------------------------------------
    async def move_writer(self, reason: str, target: str | None = None, planned: bool = False,
                          on_done: Any = None) -> dict:
        """Fail over (or, ``planned``, switch over) to ``target`` or the best reader.
        Returns the event (also recorded).  ``on_done(event)`` is called as soon as the new
        writer serves -- before a switchover restarts the old writer as a reader."""
        t0 = time.monotonic()
        conf = self.cluster.conf
        old = conf.writer()
        if old is None:
            raise FailoverError("cluster.json names no writer")
        states = await self._reader_states(conf)
        if target is not None:
            match = [(i, st) for i, st in states if i.name == target]
            if not match:
                raise FailoverError(f"{target} is not a reader of this cluster")
            chosen = choose_target(match)
            if chosen is None:
                raise FailoverError(f"{target} is not a healthy reader")
        else:
            chosen = choose_target(states)
            if chosen is None and planned:
                raise FailoverError("no healthy reader to switch over to")
        kind = "switchover" if planned else ("failover" if chosen else "restart")
        log.warning("moving_writer", kind=kind, reason=reason, old=old.name, new=getattr(chosen, "name", old.name))
        event: dict[str, Any] = {"at": round(time.time(), 3), "kind": kind, "from": old.name,
                                 "to": chosen.name if chosen else old.name, "reason": reason}
        try:
            # 1. the old writer goes: gracefully when planned, for sure otherwise.
            loop = asyncio.get_running_loop()
            sig = signal.SIGTERM if planned else signal.SIGKILL
            await loop.run_in_executor(None, self._kill, old.name, sig, GRACEFUL_STOP)
            if chosen is None:
                await self._start(old.name)  # no reader: restart the writer in place
            else:
                done = await self._promote(chosen) if promote_in_place() else None
                if done is not None and done.ok:
                    # 3. promoted in place (same process, warm cache); 4. roles in cluster.json.
                    await self._verify_writer(chosen)
                    with self.cluster.editing() as c:
                        c.instance(chosen.name).role = "writer"
                        c.instance(old.name).role = "reader"
                    event["in_place"] = True
                    event["promotion"] = {
                        "vdl": done.vdl, "applied_lsn": done.applied_lsn, "epoch": done.epoch,
                        "cached_tables": len(done.cached_tables), "dropped_tables": done.dropped_tables,
                        "from_buffer": done.from_buffer, "from_storage": done.from_storage,
                        "sessions_closed": done.sessions_closed, "seconds": done.seconds,
                    }
                else:
                    # Fallback: roles in cluster.json, then the target restarts as writer.
                    event["in_place"] = False
                    if done is not None:
                        event["promote_error"] = done.error
                        log.warning("in_place_promotion_failed", target=chosen.name, error=done.error)
                    with self.cluster.editing() as c:
                        c.instance(chosen.name).role = "writer"
                        c.instance(old.name).role = "reader"
                    await loop.run_in_executor(None, self._kill, chosen.name, signal.SIGKILL, 5.0)
                    await self._start(chosen.name)
            event["seconds"] = round(time.monotonic() - t0, 3)
            event["ok"] = True
        except (FailoverError, OSError) as e:
            event["seconds"] = round(time.monotonic() - t0, 3)
            event["ok"] = False
            event["error"] = str(e)
            log.error("move_writer_failed", error=str(e))
        record_event(self.data_dir, event)
        log.warning("writer_moved", **event)
        if on_done is not None:
            on_done(event)
        if event["ok"] and planned and chosen is not None:
            try:
                await self._start(old.name)  # back as a reader
            except (FailoverError, OSError) as e:
                log.error("old_writer_restart_failed", instance=old.name, error=str(e))
        return event

    # --- the process loop ---------------------------------------------------------------
    async def tick(self) -> None:
        conf = self.cluster.conf
        w = conf.writer()
        if w is None:
            return
        t = time.monotonic()
        st = await instance_state(conf.host, w.admin_port, HEARTBEAT_TIMEOUT, tls=self.tls)
        answered = st is not None
        if not answered:
            # Busy with a long statement?  Its heartbeat thread still answers, with how long
            # the event loop has been busy; only a loop stuck for LOOP_STUCK counts as failed.
            path = heartbeat_path(self.data_dir, w.name)
            beat = await asyncio.get_running_loop().run_in_executor(None, ping, path) if path else None
            if beat is not None and beat.get("loop_lag", 0) < LOOP_STUCK:
                self.watch.misses = 0
                return
        if answered:
            self.rtt_ms = round((time.monotonic() - t) * 1000, 2)
        pid = None if answered else self.cluster.pid(w.name)
        alive = answered or pid is not None
        running = pid is not None and _process_runnable(pid)
        if self.watch.step(w.name, answered, alive, running):
            reason = "process gone" if not alive else f"{self.watch.misses} heartbeats missed"
            self.watch.misses = 0
            await self.move_writer(reason)

    async def serve_request(self) -> None:
        path = self.data_dir / "run" / REQUEST_FILE
        try:
            req = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        path.unlink(missing_ok=True)
        rid = str(req.get("id", ""))

        def answer(event: dict) -> None:  # as soon as the new writer serves
            self.answers[rid] = event
            self.write_state()

        try:
            await self.move_writer("requested", req.get("target"), planned=True, on_done=answer)
        except FailoverError as e:
            answer({"ok": False, "error": str(e)})

    def write_state(self) -> None:
        _write_json(self.data_dir / "run" / STATE_FILE, {
            "pid": os.getpid(), "writer": self.watch.writer, "misses": self.watch.misses,
            "rtt_ms": self.rtt_ms, "requests": dict(list(self.answers.items())[-10:]),
            "autoscale": self.autoscaler.last,
        })

    # --- storage nodes that stay gone are replaced (Aurora re-replicates lost segments) ---
    async def check_storage(self) -> None:
        now = time.monotonic()
        if now - self._last_storage_check < 1.0:
            return
        self._last_storage_check = now
        if self._replacing is not None and not self._replacing.done():
            return
        try:
            conf = self.cluster.conf
        except (OSError, ValueError):
            return
        if conf.storage_transition:
            return
        limit = storage_replace_after()
        # a mutual-TLS handshake (resumed after the first): a plain probe would be refused,
        # and logged as such by the node, every second
        up = await asyncio.gather(*(self.tls.reachable(conf.host, s.port, 2.0) for s in conf.storage_nodes))
        for s, ok in zip(conf.storage_nodes, up):
            if ok:
                self.storage_down_since.pop(s.name, None)
                continue
            since = self.storage_down_since.setdefault(s.name, now)
            if now - since >= limit:
                self.storage_down_since.pop(s.name, None)
                self._replacing = asyncio.ensure_future(self._replace_storage(s.name))
                return

    async def _replace_storage(self, old: str) -> None:
        from storage.membership import replace

        loop = asyncio.get_running_loop()
        names = {s.name for s in self.cluster.conf.storage_nodes}
        k = len(names) + 1
        while f"s{k}" in names:
            k += 1
        new = f"s{k}"
        event: dict[str, Any] = {"time": time.time(), "kind": "storage_replace", "old": old, "new": new,
                                 "reason": f"unreachable for {storage_replace_after():.0f} s"}
        log.warning("storage_replace_begin", old=old, new=new)

        async def start(name: str) -> None:
            await loop.run_in_executor(None, self.cluster.start, [name])

        def stop(name: str) -> None:
            (self.cluster.run_dir / f"{name}.pid").unlink(missing_ok=True)

        try:
            await replace(self.data_dir, old, new, start=start, stop=stop)
            event["ok"] = True
        except Exception as e:  # noqa: BLE001 -- reported as an event; retried on the next check
            event["ok"] = False
            event["error"] = str(e)
            log.error("storage_replace_failed", old=old, new=new, error=str(e))
        record_event(self.data_dir, event)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("manager_started", writer=getattr(self.cluster.conf.writer(), "name", None))
        while not stop.is_set():
            await self.serve_request()
            await self.tick()
            await self.check_storage()
            await self.autoscaler.tick()
            self.write_state()
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_INTERVAL)
            except asyncio.TimeoutError:
                pass
        log.info("manager_stopping")


def promote_in_place() -> bool:
    """In-place promotion is on unless BOREALIS_PROMOTE_IN_PLACE=0 (then: restart path)."""
    return os.environ.get("BOREALIS_PROMOTE_IN_PLACE", "1") != "0"


def storage_replace_after() -> float:
    """Seconds a storage node may be unreachable before it is replaced automatically."""
    try:
        return float(os.environ.get("BOREALIS_STORAGE_REPLACE_AFTER", "900"))
    except ValueError:
        return 900.0


def request_switchover(cluster: Cluster, target: str | None, timeout: float = 90.0) -> dict:
    """Planned switchover: through the running manager, or in this process when none runs."""
    if cluster.pid("manager") is None:
        async def direct() -> dict:
            return await Manager(cluster.data_dir).move_writer("requested", target, planned=True)
        return uvloop.run(direct())
    rid = f"{os.getpid()}-{time.time_ns()}"
    _write_json(cluster.run_dir / REQUEST_FILE, {"id": rid, "target": target})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answers = json.loads((cluster.run_dir / STATE_FILE).read_text()).get("requests", {})
        except (OSError, ValueError):
            answers = {}
        if rid in answers:
            return answers[rid]
        time.sleep(0.1)
    raise FailoverError(f"the manager did not answer within {timeout:.0f} s (log {cluster.log_path('manager')})")


async def _main(data_dir: Path) -> None:
    m = Manager(data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await m.run(stop)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="borealis-manager", description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    args = ap.parse_args(argv)
    os.umask(0o077)  # events, logs and the parts it restarts: owner only
    configure("manager", "manager")
    uvloop.run(_main(args.data_dir.resolve()))


if __name__ == "__main__":
    main()
