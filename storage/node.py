"""A storage node: serves every request of ``storage.protocol`` for one segment of each PG.

    python -m storage.node --data-dir DATA_DIR --name s1

reads ``DATA_DIR/cluster.json`` (host, its own port and AZ, its peers, the number of
PGs) and keeps its RocksDB in ``DATA_DIR/storage/<name>/db`` (layout: ``storage.store``).

Request handling (:class:`StorageNode`):

* ``Append``   -- refused (``stale_epoch``) if its epoch, or any record's epoch, is below
  the node's; a higher epoch is adopted.  Records with a bad crc or an unknown PG refuse
  the whole Append (``bad_record`` / ``bad_request``).  Duplicates and records inside a
  truncation range of a newer epoch are skipped.  New records are written unsynced, then
  the node waits for a shared WAL fsync (``storage.walsync``) and replies ``AppendAck``
  with the SCL of every PG as of that fsync: never ack before durable.
* ``Read`` / ``Scan`` -- ``not_complete`` if at_lsn > SCL of the PG; otherwise at_lsn
  counts as a VDL hint, the PG is materialised up to it, and versions are read.
* ``GetState`` -- epoch, durable SCL and max LSN of every PG, VDL hint, materialised
  point (highest L <= VDL hint such that every record held with lsn <= L, in any PG, is
  materialised), truncation ranges.
* ``SetEpoch`` / ``Truncate`` -- persisted and fsynced before ``Ok``; a lower epoch than
  the node's gets ``stale_epoch``.
* ``FetchLog`` -- the PG's records above after_lsn in LSN order (holes included);
  ``too_old`` if after_lsn is below the PG's log floor (GC deleted records above it).
* ``Scrub`` / ``Gc`` -- run the scrubber (``storage.scrub``) or the collector
  (``storage.gc``) now.  ``CopyVersions`` -- raw version entries for a peer's repair or
  bootstrap.

Integrity: every record and version carries a crc32; every read path verifies it and a
damaged entry (or a RocksDB block that fails RocksDB's own checksum) answers
``Error("corrupt")`` -- never the damaged bytes -- and wakes the scrubber, which repairs
from the local log or from peers.  Retention: reads at any LSN inside the retention
window stay possible; below the PG's GC floor they answer ``too_old`` (``storage.gc``).
Restart: the SCL of each PG is checkpointed (``Mscl``) after WAL fsyncs, so a restart
replays only the log above the checkpoint.

Background tasks: the materialiser applies records up to min(VDL hint, SCL) into
versions; gossip (``storage.gossip``) fills holes from peers; the retention task samples
(time, VDL hint) and runs GC; the scrubber runs every ``scrub_interval`` and whenever a
read met damage.  A bad frame closes its connection only.  Every connection is mutual TLS
(``storage.mtls``): a peer without the cluster's internal certificate is refused before
any frame is read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from storage import protocol as P
from storage.records import DELETE, DELETE_PREFIX, PUT, PUTS, LogRecord, record_versions
from storage.segment import Segment, Truncation, Verdict
from storage.store import Batch, CorruptData, Store
from storage.walsync import GroupFlusher
from storage.wire import FrameError

log = structlog.get_logger("storage.node")

MATERIALIZE_DELAY = 0.02  # s the materialiser waits after a wake-up, gathering Appends
MATERIALIZE_CHUNK = 250  # records per step: ~5 ms of the event loop, which Appends wait behind
MAX_PGS = 1 << 16  # a record naming a PG beyond this is refused (not a growth of the volume)
RECORD_OVERHEAD = 32  # bytes a log record costs besides its key and value (PG size accounting)


class Refused(Exception):
    """A request the node answers with ``Error(code, message)``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StorageNode:
    """All state and request logic of one node; the network lives in :class:`NodeServer`."""

    def __init__(
        self,
        name: str,
        az: str,
        n_pgs: int,
        store: Store,
        *,
        retention_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.az = az
        self.n_pgs = n_pgs
        # PGs below this are the volume's first ones; the rest were added as it grew and
        # continue a table that began in an older PG: their tombstones are kept by GC,
        # since they hide that table's older versions in the older PG.
        self.base_pgs = n_pgs
        self.retention_seconds = retention_seconds
        self.clock = clock
        self.peers: list[Any] = []  # NodeClients of the other nodes (scrub repair)
        self.corrupt_seen = 0  # damaged entries met by reads since the last scrub
        self._repair_wakeup = asyncio.Event()
        self._mat_wakeup = asyncio.Event()
        self.flusher = GroupFlusher(lambda: self.store.flush_wal(), snapshot=self._snapshot, on_durable=self._on_durable)
        self.open_state(store)
        log.info(
            "node_opened", node=name, epoch=self.seg.epoch, scl=self.durable_scl, vdl_hint=self.vdl_hint,
            replayed=self.replayed,
        )

    def open_state(self, store: Store) -> None:
        """(Re)load every in-memory structure from ``store``: the SCL of each PG from its
        checkpoint plus the log above it."""
        self.store = store
        self.n_pgs = max(self.n_pgs, store.get_meta_int(b"pgs"))
        self.seg = Segment(self.n_pgs, epoch=store.get_meta_int(b"epoch"), truncations=store.get_truncations())
        self.pg_bytes = [store.get_pg_meta(b"bytes", pg) for pg in range(self.n_pgs)]
        self.gc_floor = [store.get_pg_meta(b"gc", pg) for pg in range(self.n_pgs)]
        self.log_floor = [store.get_pg_meta(b"gcprev", pg) for pg in range(self.n_pgs)]
        self.history: list[tuple[float, int]] = store.get_history()
        self.replayed = 0
        self._ckpt = [0] * self.n_pgs
        self._ckpt_dirty: set[int] = set()  # PGs whose checkpoint rose since it was last written
        for pg in range(self.n_pgs):
            base = max(store.get_pg_meta(b"scl", pg), self.gc_floor[pg])
            self._ckpt[pg] = base
            self.seg.rebuild_pg(pg, base, self._count(store.iter_log(pg, base, on_corrupt=self._note_corrupt)))
        self.durable_scl = self.seg.scl()
        self.vdl_hint = store.get_meta_int(b"vdl")
        self._vdl_saved = self.vdl_hint
        self.mat = [min(store.get_materialized(pg), self.seg.pgs[pg].scl) for pg in range(self.n_pgs)]

    def ensure_pgs(self, n: int, batch: Batch) -> bool:
        """Hold segments of PGs 0..n-1 (the volume grew); persisted in ``batch``."""
        if n <= self.n_pgs:
            return False
        if n > MAX_PGS:
            raise Refused("bad_request", f"{n} protection groups is more than {MAX_PGS}")
        self.seg.ensure_pgs(n)
        for pg in range(self.n_pgs, n):
            self.pg_bytes.append(0)
            self.gc_floor.append(0)
            self.log_floor.append(0)
            self._ckpt.append(0)
            self.mat.append(0)
            self.durable_scl[pg] = 0
        self.n_pgs = n
        batch.put_meta_int(b"pgs", n)
        log.info("pgs_added", pgs=n)
        return True

    async def adopt_pgs(self, n: int) -> None:
        """Hold PGs 0..n-1 durably (AddPgs, or a peer that holds more: gossip)."""
        batch = Batch()
        if self.ensure_pgs(n, batch):
            self.store.write(batch)
            await self.flusher.sync()

    async def add_pgs(self, m: P.AddPgs) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"add_pgs epoch {m.epoch} < node epoch {self.seg.epoch}")
        await self.adopt_pgs(m.count)
        return P.Ok(req=m.req)

    def _count(self, recs: Any) -> Any:
        for r in recs:
            self.replayed += 1
            yield r

    def _note_corrupt(self, e: CorruptData) -> None:
        """A read path met damaged bytes: count them and wake the scrubber."""
        self.corrupt_seen += 1
        self._repair_wakeup.set()
        log.warning("corruption_detected", error=str(e), raw_key=e.raw_key.hex() if e.raw_key else None)

    # --- durability ------------------------------------------------------------------
    def _snapshot(self) -> dict[int, int]:
        return self.seg.scl()

    def _on_durable(self, snap: dict[int, int]) -> None:
        for pg, lsn in snap.items():
            # A truncation during the flush may have lowered the SCL: never report more.
            self.durable_scl[pg] = min(lsn, self.seg.pgs[pg].scl)
            if self.durable_scl[pg] > self._ckpt[pg]:
                self._ckpt[pg] = self.durable_scl[pg]
                self._ckpt_dirty.add(pg)

    def write_checkpoints(self) -> None:
        """Write the pending SCL checkpoints now (unsynced; the caller flushes or closes)."""
        if self._ckpt_dirty:
            batch = Batch()
            self._put_checkpoints(batch)
            self.store.write(batch)

    def _put_checkpoints(self, batch: Batch) -> None:
        """Add the SCL checkpoints raised by flushes since the last write to ``batch``.

        They ride in the next batch the node writes anyway (an Append's, the
        materialiser's; at the latest the materialiser's idle tick) instead of costing a
        WAL write of their own after every fsync.  Always written after the records they
        cover -- RocksDB's WAL keeps write order -- so a checkpoint that survives a crash
        never claims records that did not; one lost with a crash only makes the next
        start replay a little more log."""
        dirty = self._ckpt_dirty
        if dirty:
            ckpt = self._ckpt
            for pg in dirty:
                batch.put_pg_meta(b"scl", pg, ckpt[pg])
            dirty.clear()

    def checkpoint_scl(self, batch: Batch) -> None:
        """Lower the SCL checkpoints to the current SCLs (after a truncation or repair)."""
        for pg in range(self.n_pgs):
            scl = self.seg.pgs[pg].scl
            if scl < self._ckpt[pg]:
                self._ckpt[pg] = scl
                self._ckpt_dirty.discard(pg)
                batch.put_pg_meta(b"scl", pg, scl)

    def _note_vdl(self, vdl: int, batch: Batch | None = None, wake: bool = True) -> None:
        if vdl > self.vdl_hint:
            self.vdl_hint = vdl
            if wake:
                self._mat_wakeup.set()
        if batch is not None and self.vdl_hint > self._vdl_saved:
            batch.put_meta_int(b"vdl", self.vdl_hint)
            self._vdl_saved = self.vdl_hint

    def note_peer_vdl(self, vdl: int) -> None:
        """A peer's VDL hint (gossip): also a VDL some writer reached."""
        self._note_vdl(vdl)

    # --- ingest ----------------------------------------------------------------------
    def ingest(self, records: list[LogRecord], batch: Batch) -> int:
        """Add admissible new records to the segment and the batch; returns how many."""
        n = 0
        top = max((rec.pg for rec in records), default=0)
        if top >= self.n_pgs and top < MAX_PGS:
            self.ensure_pgs(top + 1, batch)  # a PG added while we were away
        sizes = self.pg_bytes
        grown: set[int] = set()
        for rec in records:
            v = self.seg.admit(rec)
            if v is Verdict.NEW:
                self.seg.add(rec)
                batch.put_log(rec)
                sizes[rec.pg] += len(rec.key) + len(rec.value) + RECORD_OVERHEAD
                grown.add(rec.pg)
                n += 1
            elif v is Verdict.BAD_CRC:
                log.warning("bad_crc_record_skipped", pg=rec.pg, lsn=rec.lsn)
        for pg in grown:
            batch.put_pg_meta(b"bytes", pg, sizes[pg])
        return n

    def append_unsynced(self, m: P.Append) -> None:
        """Check an Append and write its new records unsynced (``Refused`` if it is bad);
        the ack waits for the next shared flush (``append`` / ``handle``)."""
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"append epoch {m.epoch} < node epoch {self.seg.epoch}")
        for rec in m.records:
            if not 0 <= rec.pg < MAX_PGS:
                raise Refused("bad_request", f"record {rec.lsn} names unknown pg {rec.pg}")
            if not rec.valid():
                raise Refused("bad_record", f"record {rec.lsn} of pg {rec.pg} fails its crc")
            if rec.epoch < self.seg.epoch:
                raise Refused("stale_epoch", f"record {rec.lsn} epoch {rec.epoch} < node epoch {self.seg.epoch}")
        batch = Batch()
        if self.seg.set_epoch(m.epoch):
            batch.put_meta_int(b"epoch", m.epoch)
            log.info("epoch_adopted", epoch=m.epoch, via="append")
        self._note_vdl(m.vdl, batch)
        self.ingest(m.records, batch)
        self._put_checkpoints(batch)
        self.store.write(batch)

    def _acked(self, req: int) -> P.AppendAck:
        self._mat_wakeup.set()
        return P.AppendAck(req=req, scl=dict(self.durable_scl))

    async def append(self, m: P.Append) -> P.AppendAck:
        self.append_unsynced(m)
        await self.flusher.sync()
        return self._acked(m.req)

    async def apply_fetched(self, records: list[LogRecord]) -> int:
        """Records from a peer (gossip): stored durably like an Append, but records of
        older epochs are fine (they were written before a recovery, below its VDL)."""
        batch = Batch()
        n = self.ingest(records, batch)
        if n:
            self.store.write(batch)
            await self.flusher.sync()
            self._mat_wakeup.set()
        return n

    # --- epoch and truncation --------------------------------------------------------
    def adopt_epoch(self, epoch: int) -> None:
        """Raise the node's epoch (written unsynced; the caller awaits a flush)."""
        if self.seg.set_epoch(epoch):
            batch = Batch()
            batch.put_meta_int(b"epoch", epoch)
            self.store.write(batch)
            log.info("epoch_adopted", epoch=epoch, via="gossip")

    async def set_epoch(self, m: P.SetEpoch) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"epoch {m.epoch} < node epoch {self.seg.epoch}")
        if self.seg.set_epoch(m.epoch):
            batch = Batch()
            batch.put_meta_int(b"epoch", m.epoch)
            self.store.write(batch)
            await self.flusher.sync()
            log.info("epoch_adopted", epoch=m.epoch, via="set_epoch")
        return P.Ok(req=m.req)

    async def truncate(self, m: P.Truncate) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"truncate epoch {m.epoch} < node epoch {self.seg.epoch}")
        if m.upto_lsn < m.after_lsn:
            raise Refused("bad_request", "upto_lsn < after_lsn")
        batch = Batch()
        if self.seg.set_epoch(m.epoch):
            batch.put_meta_int(b"epoch", m.epoch)
        # after_lsn is the VDL a recovery settled on (everything above it is cut): a VDL
        # hint like an Append's, so the next recovery walks commits only above it.  The
        # materialiser is not woken for it: the recovery in progress needs the CPU.
        self._note_vdl(m.after_lsn, batch, wake=False)
        self.apply_truncation((m.epoch, m.after_lsn, m.upto_lsn), batch)
        await self.flusher.sync()
        return P.Ok(req=m.req)

    def apply_truncation(self, t: Truncation, batch: Batch | None = None) -> bool:
        """Delete the range from the log and versions, remember it, recompute SCLs.
        Writes (unsynced) ``batch`` too; the caller awaits a flush."""
        batch = batch or Batch()
        e, after, upto = int(t[0]), int(t[1]), int(t[2])
        if not self.seg.add_truncation((e, after, upto)):
            self.store.write(batch)
            return False
        floors: dict[int, int] = {}
        for pg in range(self.n_pgs):
            for rec in self.store.iter_log(pg, after, upto):
                if rec.epoch < e:
                    batch.delete_log(pg, rec.lsn)
                    for key, _ in record_versions(rec):
                        batch.delete_version(pg, key, rec.lsn)
                    if rec.kind == DELETE_PREFIX:  # a drop that never committed
                        batch.delete_range_tombstone(pg, rec.lsn)
            floors[pg] = self.store.last_log_lsn(pg, min(after, self.seg.pgs[pg].scl))
            if self.mat[pg] > after:
                self.mat[pg] = floors[pg]
                batch.put_materialized(pg, floors[pg])
        batch.put_truncations(self.seg.truncations)
        self.store.write(batch)
        for pg in range(self.n_pgs):
            floors[pg] = max(floors[pg], self.gc_floor[pg])
            self.seg.rebuild_pg(pg, floors[pg], self.store.iter_log(pg, floors[pg], on_corrupt=self._note_corrupt))
            self.durable_scl[pg] = min(self.durable_scl[pg], self.seg.pgs[pg].scl)
        after_batch = Batch()
        self.checkpoint_scl(after_batch)
        self.store.write(after_batch)
        log.info("truncated", epoch=e, after_lsn=after, upto_lsn=upto, scl=self.seg.scl())
        return True

    # --- materialisation -------------------------------------------------------------
    def materialize(self, pg: int, upto: int, max_records: int | None = None) -> bool:
        """Apply log records of ``pg`` up to min(upto, SCL) into versions.  Returns True
        when that point is reached (False if ``max_records`` cut it short; a PUTS record
        counts as the row writes it carries)."""
        target = min(upto, self.seg.pgs[pg].scl)
        if self.mat[pg] >= target:
            return True
        batch = Batch()
        reached = target
        n = 0
        bad: list[CorruptData] = []
        for rec in self.store.iter_log(pg, self.mat[pg], target, on_corrupt=bad.append):
            if bad:
                break
            if max_records is not None and n >= max_records:
                reached = rec.lsn - 1
                break
            if rec.kind == PUT:
                batch.put_version(pg, rec.key, rec.lsn, rec.value)
            elif rec.kind == DELETE:
                batch.put_version(pg, rec.key, rec.lsn, None)
            elif rec.kind == PUTS:
                n += batch.put_versions(pg, rec.lsn, record_versions(rec)) - 1
            elif rec.kind == DELETE_PREFIX:  # applied by GC once outside the retention window
                batch.put_range_tombstone(pg, rec.lsn, rec.key)
            n += 1
        if bad:
            # Stop just below the damaged record (the scrubber repairs it, then we go on).
            reached = max(self.mat[pg], _lsn_of(bad[0].raw_key) - 1)
            for e in bad:
                self._note_corrupt(e)
        batch.put_materialized(pg, reached)
        self._put_checkpoints(batch)
        self.store.write(batch)
        self.mat[pg] = reached
        return reached >= target

    async def materializer(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._mat_wakeup.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            else:
                # Let the Appends of the next few milliseconds pile up: one log scan and
                # one write per PG for all of them, instead of one per Append (a read
                # that needs newer versions materialises what it needs itself).
                await asyncio.sleep(MATERIALIZE_DELAY)
            self._mat_wakeup.clear()
            try:
                self.write_checkpoints()
                for pg in range(self.n_pgs):
                    try:
                        while not self.materialize(pg, self.vdl_hint, MATERIALIZE_CHUNK):
                            await asyncio.sleep(0)  # Appends and reads get the loop between steps
                    except CorruptData as e:  # RocksDB refused a block: the scrubber rebuilds
                        self._note_corrupt(e)
            except Exception:  # noqa: BLE001 -- the next pass retries; the task must not end
                log.exception("materialize_failed")

    # --- reads -----------------------------------------------------------------------
    def _check_read(self, pg: int, at_lsn: int) -> None:
        if not 0 <= pg < self.n_pgs:
            raise Refused("bad_request", f"unknown pg {pg}")
        scl = self.seg.pgs[pg].scl
        if at_lsn > scl:
            raise Refused("not_complete", f"pg {pg} complete to {scl} < {at_lsn}")
        if at_lsn < self.gc_floor[pg]:
            # A record of the PG at the floor is newer than at_lsn: older versions are gone.
            raise Refused("too_old", f"pg {pg} garbage-collected up to {self.gc_floor[pg]} > {at_lsn}")
        self._note_vdl(at_lsn)
        self.materialize(pg, at_lsn)
        if self.mat[pg] < at_lsn:
            raise Refused("corrupt", f"pg {pg} has a damaged log record below {at_lsn}; repairing")

    def read(self, m: P.Read) -> P.ReadResult:
        try:
            self._check_read(m.pg, m.at_lsn)
            found = self.store.read_version(m.pg, m.key, m.at_lsn)
        except CorruptData as e:
            self._note_corrupt(e)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}; repairing") from e
        if found is None or found[1] is None:
            return P.ReadResult(req=m.req, found=False, lsn=found[0] if found else 0)
        return P.ReadResult(req=m.req, found=True, lsn=found[0], value=found[1])

    def scan(self, m: P.Scan) -> P.ScanResult:
        try:
            self._check_read(m.pg, m.at_lsn)
            items, done = self.store.scan_versions(m.pg, m.prefix, m.at_lsn, m.after, m.limit, m.deletes)
        except CorruptData as e:
            self._note_corrupt(e)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}; repairing") from e
        return P.ScanResult(req=m.req, items=items, done=done)

    def fetch_log(self, m: P.FetchLog) -> P.LogBatch:
        if not 0 <= m.pg < self.n_pgs:
            raise Refused("bad_request", f"unknown pg {m.pg}")
        if m.after_lsn < self.log_floor[m.pg]:
            raise Refused("too_old", f"pg {m.pg} log collected up to {self.log_floor[m.pg]} > {m.after_lsn}")
        out: list[LogRecord] = []
        try:
            # Damaged records are left out (a hole the asking peer fills elsewhere).
            for rec in self.store.iter_log(m.pg, m.after_lsn, on_corrupt=self._note_corrupt):
                if len(out) >= m.limit:
                    break
                out.append(rec)
        except CorruptData as e:
            self._note_corrupt(e)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}") from e
        return P.LogBatch(req=m.req, records=out)

    def copy_versions(self, m: P.CopyVersions) -> P.VersionBatch:
        """Raw verified version entries of ``m.pg`` in [begin, end) (damaged ones left out)."""
        from storage.store import decode_version, pg_version_range

        lo, hi = pg_version_range(m.pg)
        begin, end = max(m.begin, lo), min(m.end, hi)
        out: list[tuple[bytes, bytes]] = []
        try:
            for k, v in self.store.iter_raw(begin, end):
                if len(out) >= m.limit:
                    return P.VersionBatch(req=m.req, entries=out, more=True)
                try:
                    decode_version(k, v)
                except CorruptData as e:
                    self._note_corrupt(e)
                    continue
                out.append((k, v))
        except CorruptData as e:
            self._note_corrupt(e)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}") from e
        return P.VersionBatch(req=m.req, entries=out, more=False)

    def _materialized_point(self, pg: int) -> int:
        """Highest L <= VDL hint such that every record of ``pg`` this node holds with
        lsn <= L is materialised."""
        st = self.seg.pgs[pg]
        if self.mat[pg] < min(self.vdl_hint, st.scl):
            return self.mat[pg]
        if any(st.scl < lsn <= self.vdl_hint for lsn, _ in st.pending.values()):
            return st.scl
        return self.vdl_hint

    def state(self, req: int = 0) -> P.NodeState:
        return P.NodeState(
            req=req,
            name=self.name,
            az=self.az,
            epoch=self.seg.epoch,
            scl=dict(self.durable_scl),
            max_lsn=self.seg.max_lsn(),
            vdl_hint=self.vdl_hint,
            materialized=min((self._materialized_point(pg) for pg in range(self.n_pgs)), default=0),
            truncations=list(self.seg.truncations),
            gc_floor=dict(enumerate(self.gc_floor)),
            log_floor=dict(enumerate(self.log_floor)),
            corrupt=self.corrupt_seen,
            pg_bytes=dict(enumerate(self.pg_bytes)),
        )

    # --- dispatch --------------------------------------------------------------------
    def handle(self, m: Any, reply: Callable[[Any], None], tasks: set[asyncio.Task]) -> None:
        """Answer one request; requests that must wait for an fsync run as tasks."""
        try:
            if isinstance(m, P.Read):
                reply(self.read(m))
            elif isinstance(m, P.Scan):
                reply(self.scan(m))
            elif isinstance(m, P.GetState):
                reply(self.state(m.req))
            elif isinstance(m, P.FetchLog):
                reply(self.fetch_log(m))
            elif isinstance(m, P.Append):
                # The hot path: no task, the ack is sent from the flush's callback.
                self.append_unsynced(m)
                req = m.req

                def acked(exc: BaseException | None) -> None:
                    if exc is None:
                        reply(self._acked(req))
                    elif getattr(self, "closing", False):
                        reply(P.Error(req=req, code="shutting_down", message="the storage node is stopping"))
                    else:
                        log.error("append_flush_failed", req=req, error=str(exc))
                        reply(P.Error(req=req, code="internal", message=str(exc)))

                self.flusher.then(acked)
            elif isinstance(m, P.SetEpoch):
                self._spawn(self.set_epoch(m), m.req, reply, tasks)
            elif isinstance(m, P.Truncate):
                self._spawn(self.truncate(m), m.req, reply, tasks)
            elif isinstance(m, P.AddPgs):
                self._spawn(self.add_pgs(m), m.req, reply, tasks)
            elif isinstance(m, P.CopyVersions):
                reply(self.copy_versions(m))
            elif isinstance(m, P.Scrub):
                from storage.scrub import scrub

                self._spawn(scrub(self, m.req), m.req, reply, tasks)
            elif isinstance(m, P.Gc):
                from storage.gc import collect

                self._spawn(collect(self, m.req), m.req, reply, tasks)
            else:
                reply(P.Error(req=getattr(m, "req", 0), code="bad_request", message=type(m).__name__))
        except Refused as e:
            reply(P.Error(req=m.req, code=e.code, message=e.message))
        except Exception as e:  # noqa: BLE001 -- reported to the client, node keeps running
            if getattr(self, "closing", False):
                reply(P.Error(req=m.req, code="shutting_down", message="the storage node is stopping"))
                return
            log.exception("request_failed", request=type(m).__name__)
            reply(P.Error(req=m.req, code="internal", message=str(e)))

    def _spawn(self, coro: Any, req: int, reply: Callable[[Any], None], tasks: set[asyncio.Task]) -> None:
        async def run() -> None:
            try:
                reply(await coro)
            except Refused as e:
                reply(P.Error(req=req, code=e.code, message=e.message))
            except Exception as e:  # noqa: BLE001
                if getattr(self, "closing", False):
                    reply(P.Error(req=req, code="shutting_down", message="the storage node is stopping"))
                    return
                log.exception("request_failed", req=req)
                reply(P.Error(req=req, code="internal", message=str(e)))

        task = asyncio.get_running_loop().create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _lsn_of(raw_key: bytes | None) -> int:
    """LSN of a raw log key (0 if it is not one)."""
    if raw_key is None or len(raw_key) != 13 or raw_key[:1] != b"L":
        return 0
    return int.from_bytes(raw_key[5:], "big")


class NodeConnection(asyncio.Protocol):
    def __init__(self, node: StorageNode, tasks: set[asyncio.Task]) -> None:
        self.node = node
        self.tasks = tasks
        self.dec = P.REQUESTS.decoder()
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def _reply(self, msg: Any) -> None:
        """Queue a reply; every reply queued in one event-loop turn (the acks one fsync
        releases, say) leaves in one socket write."""
        self._out.append(P.REPLIES.frame(msg))
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._send_out)

    def _send_out(self) -> None:
        out, self._out = self._out, []
        t = self.transport
        if t is not None and not t.is_closing() and out:
            t.write(out[0] if len(out) == 1 else b"".join(out))

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.dec.feed(data)
        except FrameError as e:
            log.warning("bad_frame_connection_closed", error=str(e))
            if self.transport:
                self.transport.close()
            return
        for m in msgs:
            self.node.handle(m, self._reply, self.tasks)


def configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _setting(cli: float | None, env: str, raw_conf: dict, field: str, default: float) -> float:
    """A node setting: command line, else environment, else cluster.json, else default."""
    if cli is not None:
        return cli
    if os.environ.get(env):
        return float(os.environ[env])
    return float(raw_conf.get(field, default))


def open_node(path: Path, name: str, az: str, n_pgs: int, retention: float) -> StorageNode:
    """Open the node's store; one RocksDB cannot even open (or replay) is moved aside
    and the node starts empty (gossip refills it from its peers)."""
    try:
        return StorageNode(name, az, n_pgs, Store(path), retention_seconds=retention)
    except Exception as e:  # noqa: BLE001 -- only damage is expected here
        if not ("Corruption" in str(e) or isinstance(e, CorruptData)):
            raise
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time() * 1000)}")
        log.error("store_unopenable_moved_aside", error=str(e), moved_aside=str(aside))
        os.replace(path, aside)
        return StorageNode(name, az, n_pgs, Store(path), retention_seconds=retention)


async def serve(
    data_dir: Path, name: str, retention: float | None = None, scrub_interval: float | None = None
) -> None:
    import json

    from server.config import ClusterConf  # config is read only by the process entry point
    from storage.gc import retention_loop
    from storage.gossip import gossip_loop
    from storage.membership import PeerSet
    from storage.mtls import InternalTls
    from storage.scrub import scrub_loop

    conf = ClusterConf.load(data_dir)
    raw_conf = json.loads((data_dir / "cluster.json").read_text())
    me = conf.storage_node(name)
    structlog.contextvars.bind_contextvars(node=name)
    retention = _setting(retention, "BOREALIS_RETENTION_SECONDS", raw_conf, "retention_seconds", 3600.0)
    scrub_interval = _setting(scrub_interval, "BOREALIS_SCRUB_INTERVAL", raw_conf, "scrub_interval_seconds", 3600.0)
    gc_interval = _setting(None, "BOREALIS_GC_INTERVAL", raw_conf, "gc_interval_seconds", min(60.0, max(1.0, retention / 4)))
    node = open_node(data_dir / "storage" / name / "db", name, me.az, conf.protection_groups, retention)
    peer_set = PeerSet(data_dir, name)
    peers = peer_set.peers
    node.peers = peers
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    # mutual TLS: only a peer with the cluster's internal certificate gets to send a frame
    tls = InternalTls.load(data_dir)
    server = await tls.serve(lambda: NodeConnection(node, tasks), conf.host, me.listen_port or me.port,
                             f"storage node {name}")
    background = [
        loop.create_task(node.materializer()),
        loop.create_task(gossip_loop(node, peers)),
        loop.create_task(scrub_loop(node, scrub_interval)),
        loop.create_task(retention_loop(node, gc_interval)),
        loop.create_task(peer_set.watch()),
    ]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "node_listening", host=conf.host, port=me.port, az=me.az, pgs=conf.protection_groups,
        retention_seconds=retention, scrub_interval=scrub_interval, gc_interval=gc_interval,
    )
    await stop.wait()
    log.info("node_stopping")
    node.closing = True  # requests still arriving on open connections are refused, not run
    server.close()
    for t in background:
        t.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    if tasks:
        await asyncio.wait(list(tasks), timeout=2.0)
    await node.flusher.drain()
    node.write_checkpoints()  # a clean stop replays no log on the next start
    for p in peers:
        p.close()
    node.store.close()
    log.info("node_stopped")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="storage.node", description="Borealis storage node")
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--retention-seconds", type=float, default=None,
                    help="keep versions readable this far back (default: cluster.json retention_seconds, 3600)")
    ap.add_argument("--scrub-interval", type=float, default=None, help="seconds between scrub passes (default 3600)")
    args = ap.parse_args(argv)
    configure_logging()
    # The fsync runs on the event loop now, so no Python thread of the node waits for the
    # GIL in normal work; the short interval only bounds such a wait should one appear.
    sys.setswitchinterval(0.001)
    import uvloop

    uvloop.run(serve(args.data_dir, args.name, args.retention_seconds, args.scrub_interval))


if __name__ == "__main__":
    main()
