"""A simulated storage node: the real ``storage.segment.Segment`` over an in-memory disk.

``SimNode`` follows ``storage.node.StorageNode`` request by request (Append, SetEpoch,
Truncate, FetchLog, GetState, AddPgs and gossip's ``apply_fetched``/``adopt_epoch``/
``adopt_pgs``/``apply_truncation``), minus materialised versions, which play no part in
quorums (a Scan -- the writer reads the placement map -- answers from the log).  It
exposes the attributes ``storage.gossip.Gossip`` uses, so the real gossip code repairs it.

Durability model (what a crash keeps):

    SimDisk    -- what survived: log per PG {lsn: record}, epoch, VDL hint, truncations
    SimStore   -- the node's view: the disk plus batches written but not yet fsynced
                  (``unsynced``, in write order; reads see them, like RocksDB's memtable)

A flush (``SimFlusher``, same group-commit contract as ``storage.walsync.GroupFlusher``)
takes a virtual fsync delay and then moves the batches written before it started to the
disk.  A crash keeps a random prefix of the unsynced batches (a torn WAL tail: the last
writes are lost whole, a batch is atomic as in RocksDB) and forgets the rest.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage import protocol as P
from storage.records import DELETE, PUT, LogRecord, record_versions
from storage.segment import Segment, Truncation, Verdict, repaired_segments, reported_scls

Op = tuple  # ("log", rec) | ("dellog", pg, lsn) | ("meta", name, value) | ("truncs", list)


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SimDisk:
    logs: dict[int, dict[int, LogRecord]] = field(default_factory=dict)
    meta: dict[str, int] = field(default_factory=dict)
    truncations: list[Truncation] = field(default_factory=list)

    def apply(self, batch: list[Op]) -> None:
        for op in batch:
            if op[0] == "log":
                self.logs.setdefault(op[1].pg, {})[op[1].lsn] = op[1]
            elif op[0] == "dellog":
                self.logs.get(op[1], {}).pop(op[2], None)
            elif op[0] == "meta":
                self.meta[op[1]] = op[2]
            elif op[0] == "truncs":
                self.truncations = list(op[1])

    def copy(self) -> "SimDisk":
        return SimDisk({pg: dict(l) for pg, l in self.logs.items()}, dict(self.meta), list(self.truncations))


class SimStore:
    def __init__(self, disk: SimDisk) -> None:
        self.disk = disk
        self.mem = disk.copy()
        self.unsynced: list[list[Op]] = []
        # Called for every stored record that fails its crc on a read path (the node marks
        # its segment damaged); such a record is never yielded.
        self.bad: Callable[[LogRecord], None] | None = None

    def write(self, batch: list[Op]) -> None:
        if batch:
            self.mem.apply(batch)
            self.unsynced.append(batch)

    def persist(self, n: int) -> None:
        for b in self.unsynced[:n]:
            self.disk.apply(b)
        del self.unsynced[:n]

    def iter_log(self, pg: int, after: int, upto: int | None = None, on_corrupt: Any = None):
        log = self.mem.logs.get(pg, {})
        for lsn in sorted(log):
            if lsn > after and (upto is None or lsn <= upto):
                rec = log[lsn]
                if not rec.valid():  # damaged on disk (the sim's corruption fault)
                    if self.bad is not None:
                        self.bad(rec)
                    continue
                yield rec

    def last_log_lsn(self, pg: int, upto: int) -> int:
        return max((l for l in self.mem.logs.get(pg, {}) if l <= upto), default=0)


class SimFlusher:
    """Group fsync in virtual time (the contract of ``storage.walsync.GroupFlusher``)."""

    def __init__(self, node: "SimNode") -> None:
        self.node = node
        self._waiters: list[asyncio.Future] = []
        self._task: asyncio.Task | None = None

    async def sync(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._task is None:
            self._task = self.node.spawn(self._run())
        await fut

    async def _run(self) -> None:
        node = self.node
        try:
            while self._waiters:
                waiters, self._waiters = self._waiters, []
                snap = node.seg.scl()
                n = len(node.store.unsynced)
                await asyncio.sleep(node.rng.uniform(0.0005, 0.004))
                node.store.persist(n)
                node._on_durable(snap)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._task = None

    async def drain(self) -> None:
        while self._task is not None:
            await asyncio.sleep(0.001)


class SimNode:
    def __init__(self, name: str, n_pgs: int, disk: SimDisk, rng: random.Random) -> None:
        self.name = name
        n_pgs = max(n_pgs, disk.meta.get("pgs", 0))
        self.n_pgs = n_pgs
        self.rng = rng
        self.tasks: dict[asyncio.Task, None] = {}  # ordered: cancellation order is deterministic
        self.alive = True
        # Damaged segments, as storage.node keeps them: PG -> [state, target].
        self.damaged: dict[int, list] = {}
        self._repair_task: asyncio.Task | None = None
        self.served_invalid = 0  # replies that carried a record failing its crc (must stay 0)
        self.store = SimStore(disk)
        self.store.bad = self._bad
        self.seg = Segment(n_pgs, epoch=disk.meta.get("epoch", 0), truncations=disk.truncations)
        self.durable_scl: dict[int, int] = {}
        for pg in range(n_pgs):
            self.seg.rebuild_pg(pg, 0, self.store.iter_log(pg, 0))
        self.durable_scl = self.seg.scl()
        self.vdl_hint = disk.meta.get("vdl", 0)
        self.flusher = SimFlusher(self)

    # --- life ------------------------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks[task] = None
        task.add_done_callback(lambda t: self.tasks.pop(t, None))
        return task

    def crash(self) -> None:
        """Stop now: cancel every request and background task; keep a torn prefix of
        the unsynced writes."""
        self.alive = False
        self.store.persist(self.rng.randint(0, len(self.store.unsynced)))
        for t in list(self.tasks):
            t.cancel()

    def _on_durable(self, snap: dict[int, int]) -> None:
        for pg, lsn in snap.items():
            self.durable_scl[pg] = min(lsn, self.seg.pgs[pg].scl)
        if self.damaged:
            self.check_repaired()

    # --- damage (storage.node: mark_damaged / mark_repairing; storage.scrub) -----------
    def _bad(self, rec: LogRecord) -> None:
        """A read path met a record failing its crc: the segment is damaged."""
        pg = rec.pg if 0 <= rec.pg < self.n_pgs else 0
        cur = self.damaged.get(pg)
        target = max(self.seg.pgs[pg].scl, self.durable_scl.get(pg, 0))
        if cur is None:
            self.damaged[pg] = ["damaged", target]
        else:
            cur[0], cur[1] = "damaged", max(cur[1], target)
        if self._repair_task is None or self._repair_task.done():
            self._repair_task = self.spawn(self._repair())

    async def _repair(self) -> None:
        """The scrubber: delete the damaged records (no peer gave them back at once), set
        the SCL below them; gossip refetches them.  Whole once the SCL is back."""
        await asyncio.sleep(0.05)  # fixed: no draw from the run's RNG
        for pg, cur in list(self.damaged.items()):
            if cur[0] != "damaged":
                continue
            bad = [lsn for lsn, r in self.store.mem.logs.get(pg, {}).items() if not r.valid()]
            if bad:
                self.store.write([("dellog", pg, lsn) for lsn in bad])
            self.seg.rebuild_pg(pg, 0, self.store.iter_log(pg, 0))
            self.durable_scl[pg] = min(self.durable_scl[pg], self.seg.pgs[pg].scl)
            cur[0] = "repairing"
        await self.flusher.sync()
        self.check_repaired()

    async def scrubber(self, interval: float = 0.4) -> None:
        """A scrub pass every ``interval`` virtual seconds: read every stored record (a
        damaged one marks its segment damaged and starts the repair)."""
        while True:
            await asyncio.sleep(interval)
            for pg in range(self.n_pgs):
                for _ in self.store.iter_log(pg, 0):
                    pass
            if self.damaged and (self._repair_task is None or self._repair_task.done()):
                if any(st == "damaged" for st, _t in self.damaged.values()):
                    self._repair_task = self.spawn(self._repair())

    def check_repaired(self) -> None:
        for pg in repaired_segments(self.durable_scl, self.damaged):
            del self.damaged[pg]

    def reported_scl(self) -> dict[int, int]:
        return reported_scls(self.durable_scl, self.damaged)

    def _refuse_damaged(self, pg: int, fetch: bool = False) -> None:
        st = self.damaged.get(pg)
        if st is not None and (st[0] == "damaged" or not fetch):
            raise Refused("corrupt", f"segment of pg {pg} on {self.name} is {st[0]}")

    def _note_vdl(self, vdl: int, batch: list[Op]) -> None:
        if vdl > self.vdl_hint:
            self.vdl_hint = vdl
            batch.append(("meta", "vdl", vdl))

    # --- requests (same checks and order as storage.node.StorageNode) ----------------
    async def handle(self, m: Any) -> Any:
        if isinstance(m, P.GetState):
            return self.state(m.req)
        if isinstance(m, P.FetchLog):
            return self.fetch_log(m)
        if isinstance(m, P.Append):
            return await self.append(m)
        if isinstance(m, P.SetEpoch):
            return await self.set_epoch(m)
        if isinstance(m, P.Truncate):
            return await self.truncate(m)
        if isinstance(m, P.AddPgs):
            if m.epoch < self.seg.epoch:
                raise Refused("stale_epoch", f"add_pgs epoch {m.epoch} < node epoch {self.seg.epoch}")
            await self.adopt_pgs(m.count)
            return P.Ok(req=m.req)
        if isinstance(m, P.Scan):
            return self.scan(m)
        raise Refused("bad_request", type(m).__name__)

    # --- a grown volume (storage.node: ensure_pgs / adopt_pgs) -------------------------
    def ensure_pgs(self, n: int, batch: list[Op]) -> bool:
        if n <= self.n_pgs:
            return False
        self.seg.ensure_pgs(n)
        for pg in range(self.n_pgs, n):
            self.durable_scl[pg] = 0
        self.n_pgs = n
        batch.append(("meta", "pgs", n))
        return True

    async def adopt_pgs(self, n: int) -> None:
        batch: list[Op] = []
        if self.ensure_pgs(n, batch):
            self.store.write(batch)
            await self.flusher.sync()

    def scan(self, m: P.Scan) -> P.ScanResult:
        """Versions straight from the log (the sim does not materialise): per key with the
        prefix, its newest record <= at_lsn."""
        if not 0 <= m.pg < self.n_pgs:
            raise Refused("bad_request", f"unknown pg {m.pg}")
        self._refuse_damaged(m.pg)
        if m.at_lsn > self.seg.pgs[m.pg].scl:
            raise Refused("not_complete", f"pg {m.pg} complete to {self.seg.pgs[m.pg].scl} < {m.at_lsn}")
        newest: dict[bytes, tuple[int, bytes | None]] = {}
        recs = list(self.store.iter_log(m.pg, 0, m.at_lsn))
        self._refuse_damaged(m.pg)  # the walk met damage: never a short answer
        for rec in recs:
            if not rec.valid():
                self.served_invalid += 1
            for key, value in record_versions(rec):
                if key.startswith(m.prefix) and (m.after is None or key > m.after):
                    newest[key] = (rec.lsn, value)
        items = [(k, lsn, v) for k, (lsn, v) in sorted(newest.items()) if v is not None or m.deletes]
        return P.ScanResult(req=m.req, items=items[: m.limit], done=len(items) <= m.limit)

    def ingest(self, records: list[LogRecord], batch: list[Op]) -> int:
        n = 0
        top = max((rec.pg for rec in records), default=0)
        if top >= self.n_pgs:
            self.ensure_pgs(top + 1, batch)  # a PG added while we were away
        for rec in records:
            if self.seg.admit(rec) is Verdict.NEW:
                self.seg.add(rec)
                batch.append(("log", rec))
                n += 1
        return n

    async def append(self, m: P.Append) -> P.AppendAck:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"append epoch {m.epoch} < node epoch {self.seg.epoch}")
        for rec in m.records:
            if not 0 <= rec.pg < 1 << 16:
                raise Refused("bad_request", "unknown pg")
            if not rec.valid():
                raise Refused("bad_record", "crc")
            if rec.epoch < self.seg.epoch:
                raise Refused("stale_epoch", f"record epoch {rec.epoch} < node epoch {self.seg.epoch}")
        batch: list[Op] = []
        if self.seg.set_epoch(m.epoch):
            batch.append(("meta", "epoch", m.epoch))
        self._note_vdl(m.vdl, batch)
        self.ingest(m.records, batch)
        self.store.write(batch)
        await self.flusher.sync()
        return P.AppendAck(req=m.req, scl=self.reported_scl())

    async def apply_fetched(self, records: list[LogRecord]) -> int:
        batch: list[Op] = []
        n = self.ingest(records, batch)
        if n:
            self.store.write(batch)
            await self.flusher.sync()
        return n

    def adopt_epoch(self, epoch: int) -> None:
        if self.seg.set_epoch(epoch):
            self.store.write([("meta", "epoch", epoch)])

    async def set_epoch(self, m: P.SetEpoch) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"epoch {m.epoch} < node epoch {self.seg.epoch}")
        if self.seg.set_epoch(m.epoch):
            self.store.write([("meta", "epoch", m.epoch)])
            await self.flusher.sync()
        return P.Ok(req=m.req)

    async def truncate(self, m: P.Truncate) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"truncate epoch {m.epoch} < node epoch {self.seg.epoch}")
        if m.upto_lsn < m.after_lsn:
            raise Refused("bad_request", "upto_lsn < after_lsn")
        batch: list[Op] = []
        if self.seg.set_epoch(m.epoch):
            batch.append(("meta", "epoch", m.epoch))
        self._note_vdl(m.after_lsn, batch)  # the recovered VDL (see storage.node)
        self.apply_truncation((m.epoch, m.after_lsn, m.upto_lsn), batch)
        await self.flusher.sync()
        return P.Ok(req=m.req)

    def apply_truncation(self, t: Truncation, batch: list[Op] | None = None) -> bool:
        batch = batch if batch is not None else []
        e, after, upto = int(t[0]), int(t[1]), int(t[2])
        if not self.seg.add_truncation((e, after, upto)):
            self.store.write(batch)
            return False
        floors: dict[int, int] = {}
        for pg in range(self.n_pgs):
            for rec in list(self.store.iter_log(pg, after, upto)):
                if rec.epoch < e:
                    batch.append(("dellog", pg, rec.lsn))
            floors[pg] = self.store.last_log_lsn(pg, min(after, self.seg.pgs[pg].scl))
        batch.append(("truncs", list(self.seg.truncations)))
        self.store.write(batch)
        for pg in range(self.n_pgs):
            self.seg.rebuild_pg(pg, floors[pg], self.store.iter_log(pg, floors[pg]))
            self.durable_scl[pg] = min(self.durable_scl[pg], self.seg.pgs[pg].scl)
        for cur in self.damaged.values():
            cur[1] = min(cur[1], after)
        self.check_repaired()
        return True

    def fetch_log(self, m: P.FetchLog) -> P.LogBatch:
        self._refuse_damaged(m.pg, fetch=True)
        out: list[LogRecord] = []
        for rec in self.store.iter_log(m.pg, m.after_lsn):
            if len(out) >= m.limit:
                break
            out.append(rec)
        self._refuse_damaged(m.pg, fetch=True)
        self.served_invalid += sum(1 for r in out if not r.valid())
        return P.LogBatch(req=m.req, records=out)

    def state(self, req: int = 0) -> P.NodeState:
        return P.NodeState(
            req=req,
            name=self.name,
            az="",
            epoch=self.seg.epoch,
            scl=self.reported_scl(),
            max_lsn=self.seg.max_lsn(),
            vdl_hint=self.vdl_hint,
            materialized=0,
            truncations=list(self.seg.truncations),
            damaged={pg: st for pg, (st, _t) in sorted(self.damaged.items())},
        )


__all__ = ["SimDisk", "SimNode", "Refused", "PUT", "DELETE"]
