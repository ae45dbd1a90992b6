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
``Error("corrupt")`` -- never the damaged bytes, never a short answer -- marks the
segment ``damaged`` (not served, SCL reported as 0) and wakes the scrubber, which repairs
from the local log or from peers, or rebuilds the whole store; the segment is
``repairing`` until its SCL is back (``NodeState.damaged``).  A failed write (a full
disk: ``no_space``) is never acked: the in-memory state is reloaded from the store.  Retention: reads at any LSN inside the retention
window stay possible; below the PG's GC floor they answer ``too_old`` (``storage.gc``).
Encryption at rest: at start the node unwraps the volume's data key (``encryption`` in
cluster.json) with the key-encryption key (``storage.atrest``) and seals every value it
writes; a wrong key, or a store sealed under another data key, refuses the start
(``node_refused_to_start``, exit code 1).  The process runs with umask 077.
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
import errno
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog

from storage import atrest
from storage import protocol as P
from storage.atrest import EntryCipher
from storage.records import DELETE, DELETE_PREFIX, PUT, PUTS, LogRecord, record_versions
from storage.segment import Segment, Truncation, Verdict, repaired_segments, reported_scls
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
        # Segments found damaged: PG -> [state, target].  "damaged": not served (reads get
        # ``corrupt``) and reported with SCL 0, so the writer's quorum counts the segment
        # as missing; "repairing": the scrubber fixed what it found (or rebuilt the store)
        # and the segment refills from its peers.  It is whole again once its SCL reaches
        # ``target`` (what it held when the damage was found) -- until then reads of it are
        # refused too.  ``rebuild_needed``: RocksDB itself failed (a block, a compaction):
        # the next scrub moves the store aside and refills every segment from the peers.
        self.damaged: dict[int, list] = {}
        self.rebuild_needed = False
        # Kept outside RocksDB (which may be what is broken), so a restart does not forget
        # damage found before it: set by ``serve`` (``load_damage``).
        self.damage_file: Path | None = None
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
        self.durable_scl: dict[int, int] = {}
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
            self._write(batch)
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

    def _note_corrupt(self, e: CorruptData, pg: int | None = None) -> None:
        """A read path met damaged bytes: count them, mark the segment damaged (every
        segment when RocksDB could not even tell which one: the store will be rebuilt) and
        wake the scrubber."""
        self.corrupt_seen += 1
        if pg is None and e.raw_key is not None and e.raw_key[:1] in (b"L", b"V") and len(e.raw_key) >= 5:
            pg = int.from_bytes(e.raw_key[1:5], "big")
        if e.raw_key is None:  # RocksDB refused a block: no walk can get past it
            self.rebuild_needed = True
        self.mark_damaged(range(self.n_pgs) if pg is None or pg >= self.n_pgs else [pg])
        self._repair_wakeup.set()
        log.warning("corruption_detected", error=str(e), pg=pg, raw_key=e.raw_key.hex() if e.raw_key else None)

    def _save_damage(self) -> None:
        path = self.damage_file
        if path is None:
            return
        try:
            if self.damaged:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(msgspec.json.encode({str(pg): v for pg, v in self.damaged.items()}))
                os.replace(tmp, path)
            else:
                path.unlink(missing_ok=True)
        except OSError as e:  # a full disk: the in-memory state still holds
            log.warning("damage_file_not_written", error=str(e))

    def load_damage(self, path: Path) -> None:
        """Remember damage across restarts in ``path``; damage a previous run found and
        had not repaired yet is taken up again (and the scrubber woken)."""
        self.damage_file = path
        try:
            saved = msgspec.json.decode(path.read_bytes(), type=dict[int, list])
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            saved = {}
        for pg, (state, target) in saved.items():
            if 0 <= pg < self.n_pgs and pg not in self.damaged:
                self.damaged[pg] = [state, int(target)]
        if self.damaged:
            log.warning("damage_remembered", damaged=self.damaged)
            self._repair_wakeup.set()
        self._save_damage()

    def mark_damaged(self, pgs: Any) -> None:
        for pg in pgs:
            cur = self.damaged.get(pg)
            target = max(self.seg.pgs[pg].scl, self.durable_scl.get(pg, 0))
            if cur is None:
                self.damaged[pg] = ["damaged", target]
                log.error("segment_damaged", pg=pg, scl=target)
            else:
                cur[0] = "damaged"
                if cur[1] >= 0:  # -1 (not known yet) stays for the peers to tell
                    cur[1] = max(cur[1], target)
        self._save_damage()

    def mark_repairing(self, pgs: Any) -> None:
        """The scrubber repaired (or rebuilt) these segments: whole again once their SCL
        is back at the target."""
        for pg in pgs:
            cur = self.damaged.get(pg)
            if cur is not None and cur[0] == "damaged":
                cur[0] = "repairing"
                log.warning("segment_repairing", pg=pg, target=cur[1])
        self._save_damage()
        self.check_repaired()

    def check_repaired(self) -> None:
        done = repaired_segments(self.durable_scl, self.damaged)
        for pg in done:
            del self.damaged[pg]
            log.warning("segment_repaired", pg=pg, scl=self.durable_scl.get(pg, 0))
        if done:
            self._save_damage()

    def reported_scl(self) -> dict[int, int]:
        """SCLs as told to writers and peers: a damaged segment counts as holding nothing."""
        return reported_scls(self.durable_scl, self.damaged)

    def _write(self, batch: Batch) -> None:
        """Write ``batch``; if it fails, the in-memory state (which may already count the
        batch's records) is reloaded from the store -- a failed write is never acked --
        and the error raised: ``no_space`` on a full disk, ``corrupt`` when RocksDB
        itself failed (every segment damaged; the scrubber rebuilds the store)."""
        try:
            self.store.write(batch)
        except CorruptData as e:
            self._note_corrupt(e)
            raise Refused("corrupt", f"storage of {self.name} is damaged: {e}; rebuilding from peers") from e
        except OSError as e:
            try:
                self.reload_state()
            except CorruptData as e2:
                self._note_corrupt(e2)
            if e.errno == errno.ENOSPC:
                log.warning("write_refused_disk_full", error=str(e))
                raise Refused("no_space", f"storage node {self.name}: no space left on device") from e
            log.error("write_failed", error=str(e))
            raise Refused("io_error", f"storage node {self.name}: {e}") from e

    def reload_state(self) -> None:
        """Re-derive every in-memory structure from what the store holds (after a failed
        write); the durable SCLs never rise by it."""
        before = dict(self.durable_scl)
        self.open_state(self.store)
        for pg, lsn in self.durable_scl.items():
            self.durable_scl[pg] = min(lsn, before.get(pg, 0))

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
            self._write(batch)

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
        if self.store.full:  # known full disk: refuse before anything changes in memory
            raise Refused("no_space", f"storage node {self.name}: no space left on device")
        batch = Batch()
        if self.seg.set_epoch(m.epoch):
            batch.put_meta_int(b"epoch", m.epoch)
            log.info("epoch_adopted", epoch=m.epoch, via="append")
        self._note_vdl(m.vdl, batch)
        self.ingest(m.records, batch)
        self._put_checkpoints(batch)
        self._write(batch)

    def _acked(self, req: int) -> P.AppendAck:
        self._mat_wakeup.set()
        if self.damaged:
            self.check_repaired()
            return P.AppendAck(req=req, scl=self.reported_scl())
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
            self._write(batch)
            await self.flusher.sync()
            self._mat_wakeup.set()
        return n

    # --- epoch and truncation --------------------------------------------------------
    def adopt_epoch(self, epoch: int) -> None:
        """Raise the node's epoch (written unsynced; the caller awaits a flush)."""
        if self.seg.set_epoch(epoch):
            batch = Batch()
            batch.put_meta_int(b"epoch", epoch)
            self._write(batch)
            log.info("epoch_adopted", epoch=epoch, via="gossip")

    async def set_epoch(self, m: P.SetEpoch) -> P.Ok:
        if m.epoch < self.seg.epoch:
            raise Refused("stale_epoch", f"epoch {m.epoch} < node epoch {self.seg.epoch}")
        if self.seg.set_epoch(m.epoch):
            batch = Batch()
            batch.put_meta_int(b"epoch", m.epoch)
            self._write(batch)
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
            self._write(batch)
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
        self._write(batch)
        for pg in range(self.n_pgs):
            floors[pg] = max(floors[pg], self.gc_floor[pg])
            self.seg.rebuild_pg(pg, floors[pg], self.store.iter_log(pg, floors[pg], on_corrupt=self._note_corrupt))
            self.durable_scl[pg] = min(self.durable_scl[pg], self.seg.pgs[pg].scl)
        after_batch = Batch()
        self.checkpoint_scl(after_batch)
        self._write(after_batch)
        for cur in self.damaged.values():
            if cur[1] >= 0:
                cur[1] = min(cur[1], after)  # records above the recovered VDL are gone everywhere
        self.check_repaired()
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
                self._note_corrupt(e, pg)
        batch.put_materialized(pg, reached)
        self._put_checkpoints(batch)
        self._write(batch)
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
                        self._note_corrupt(e, pg)
                self.check_repaired()
            except Refused as e:  # a full disk, a broken store: the next pass retries
                log.warning("materialize_failed", error=e.message)
            except Exception:  # noqa: BLE001 -- the next pass retries; the task must not end
                log.exception("materialize_failed")

    # --- reads -----------------------------------------------------------------------
    def _check_read(self, pg: int, at_lsn: int) -> None:
        if not 0 <= pg < self.n_pgs:
            raise Refused("bad_request", f"unknown pg {pg}")
        if pg in self.damaged:
            state = self.damaged[pg][0]
            raise Refused("corrupt", f"segment of pg {pg} on {self.name} is {state}; read another segment")
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
            self._note_corrupt(e, m.pg)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}; repairing") from e
        if found is None or found[1] is None:
            return P.ReadResult(req=m.req, found=False, lsn=found[0] if found else 0)
        return P.ReadResult(req=m.req, found=True, lsn=found[0], value=found[1])

    def scan(self, m: P.Scan) -> P.ScanResult:
        try:
            self._check_read(m.pg, m.at_lsn)
            items, done = self.store.scan_versions(m.pg, m.prefix, m.at_lsn, m.after, m.limit, m.deletes)
        except CorruptData as e:
            self._note_corrupt(e, m.pg)
            raise Refused("corrupt", f"damaged data on {self.name}: {e}; repairing") from e
        return P.ScanResult(req=m.req, items=items, done=done)

    def fetch_log(self, m: P.FetchLog) -> P.LogBatch:
        if not 0 <= m.pg < self.n_pgs:
            raise Refused("bad_request", f"unknown pg {m.pg}")
        if self.damaged.get(m.pg, ("",))[0] == "damaged":
            raise Refused("corrupt", f"segment of pg {m.pg} on {self.name} is damaged; fetch from another segment")
        if m.after_lsn < self.log_floor[m.pg]:
            raise Refused("too_old", f"pg {m.pg} log collected up to {self.log_floor[m.pg]} > {m.after_lsn}")
        out: list[LogRecord] = []
        try:
            # Damaged records are left out (a hole the asking peer fills elsewhere).
            for rec in self.store.iter_log(m.pg, m.after_lsn, on_corrupt=lambda e: self._note_corrupt(e, m.pg)):
                if len(out) >= m.limit:
                    break
                out.append(rec)
        except CorruptData as e:
            self._note_corrupt(e, m.pg)
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
                    self._note_corrupt(e, m.pg)
                    continue
                out.append((k, v))
        except CorruptData as e:
            self._note_corrupt(e, m.pg)
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
            scl=self.reported_scl(),
            max_lsn=self.seg.max_lsn(),
            vdl_hint=self.vdl_hint,
            materialized=min((self._materialized_point(pg) for pg in range(self.n_pgs)), default=0),
            truncations=list(self.seg.truncations),
            gc_floor=dict(enumerate(self.gc_floor)),
            log_floor=dict(enumerate(self.log_floor)),
            corrupt=self.corrupt_seen,
            pg_bytes=dict(enumerate(self.pg_bytes)),
            damaged={pg: st for pg, (st, _t) in sorted(self.damaged.items())},
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
        except (CorruptData, OSError) as e:
            reply(self._store_error(m.req, e))
        except Exception as e:  # noqa: BLE001 -- reported to the client, node keeps running
            if getattr(self, "closing", False):
                reply(P.Error(req=m.req, code="shutting_down", message="the storage node is stopping"))
                return
            log.exception("request_failed", request=type(m).__name__)
            reply(P.Error(req=m.req, code="internal", message=str(e)))

    def _store_error(self, req: int, e: Exception) -> P.Error:
        """A request failed on the store itself: damage (noted, repaired) or a full disk."""
        if isinstance(e, CorruptData):
            self._note_corrupt(e)
            return P.Error(req=req, code="corrupt", message=f"damaged data on {self.name}: {e}; repairing")
        log.warning("request_failed_on_store", error=str(e))
        code = "no_space" if getattr(e, "errno", None) == errno.ENOSPC else "io_error"
        return P.Error(req=req, code=code, message=f"storage node {self.name}: {e}")

    def _spawn(self, coro: Any, req: int, reply: Callable[[Any], None], tasks: set[asyncio.Task]) -> None:
        async def run() -> None:
            try:
                reply(await coro)
            except Refused as e:
                reply(P.Error(req=req, code=e.code, message=e.message))
            except (CorruptData, OSError) as e:
                reply(self._store_error(req, e))
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


def _seal(store: Store, path: Path, cipher: EntryCipher | None, strict: bool) -> None:
    if cipher is not None and not store.seal_with(cipher, strict):
        log.warning("store_partly_unencrypted", path=str(path),
                    detail="values written before encryption at rest stay readable unencrypted")


def open_node(path: Path, name: str, az: str, n_pgs: int, retention: float,
              cipher: EntryCipher | None = None, strict: bool = True) -> StorageNode:
    """Open the node's store (its values sealed under ``cipher``; ``strict``: the volume was
    encrypted from its creation, see ``Store.seal_with``).  One RocksDB cannot even open
    (or replay) is moved aside, the node starts empty with what metadata could still be
    read, and every segment is ``repairing`` (refilled from the peers by gossip) -- never a
    crash loop."""
    store: Store | None = None
    try:
        store = Store(path)
        _seal(store, path, cipher, strict)
        return StorageNode(name, az, n_pgs, store, retention_seconds=retention)
    except Exception as e:  # noqa: BLE001 -- only damage is expected here
        if not ("Corruption" in str(e) or isinstance(e, CorruptData)):
            if store is not None:
                store.close_damaged()  # releases RocksDB's lock
            raise
        error = str(e)
    # Out of the except block: its traceback held the failed walk's RocksDB iterator,
    # which keeps the database (and its lock) open.
    gc.collect()
    kept = _salvage(store, n_pgs)
    if store is not None:
        store.close_damaged()
        store = None
        gc.collect()
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time() * 1000)}")
    log.error("store_unopenable_moved_aside", error=error, moved_aside=str(aside))
    os.replace(path, aside)
    store = Store(path)
    _seal(store, path, cipher, strict)
    batch = Batch()
    for meta, value in kept.meta.items():
        batch.put_meta_int(meta, value)
    if kept.truncations:
        batch.put_truncations(kept.truncations)
    if kept.history:
        batch.put_history(kept.history)
    store.write(batch)
    store.flush_wal()
    node = StorageNode(name, az, n_pgs, store, retention_seconds=retention)
    # Whole again once each segment is back at its last SCL checkpoint (-1: unknown,
    # learnt from the peers by the scrubber's repair loop).
    node.damaged = {pg: ["repairing", kept.scl.get(pg, -1)] for pg in range(node.n_pgs)}
    return node


class _Salvaged:
    def __init__(self) -> None:
        self.meta: dict[bytes, int] = {}
        self.truncations: list[tuple[int, int, int]] = []
        self.history: list[tuple[float, int]] = []
        self.scl: dict[int, int] = {}


def _salvage(store: Store | None, n_pgs: int) -> _Salvaged:
    """Whatever metadata of a damaged store can still be read (each item on its own)."""
    out = _Salvaged()
    if store is None:
        return out

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:  # noqa: BLE001 -- that item is lost with the store
            return None

    for meta in (b"epoch", b"vdl", b"pgs"):
        v = attempt(lambda meta=meta: store.get_meta_int(meta))
        if v:
            out.meta[meta] = v
    out.truncations = attempt(store.get_truncations) or []
    out.history = attempt(store.get_history) or []
    for pg in range(max(n_pgs, out.meta.get(b"pgs", 0))):
        v = attempt(lambda pg=pg: store.get_pg_meta(b"scl", pg))
        if v is not None:
            out.scl[pg] = v
    return out


FAULT_POLL = 0.2  # s between looks for the fault-hook file


async def fault_hooks(node: StorageNode, node_dir: Path) -> None:
    """Test fault hook: while ``<node dir>/FAULT_ENOSPC`` exists, every store write fails
    as on a full disk (``Store.full``); removing it gives the space back."""
    flag = node_dir / "FAULT_ENOSPC"
    while True:
        full = flag.exists()
        if full != node.store.full:
            log.warning("fault_hook_enospc", active=full)
        node.store.full = full
        await asyncio.sleep(FAULT_POLL)


class StartRefused(Exception):
    """The node cannot start as configured (the message says why, for its log)."""


def volume_cipher(raw_conf: dict) -> EntryCipher:
    """The cipher of the volume's data key, unwrapped by the KEK (``storage.atrest``)."""
    enc = raw_conf.get("encryption") or {}
    if not enc.get("wrapped_dek"):
        raise StartRefused("cluster.json holds no data key for encryption at rest (start the cluster with `borealis up`)")
    try:
        return EntryCipher(atrest.unwrap_dek(atrest.load_kek(enc.get("kek_file")), enc["wrapped_dek"]))
    except atrest.KeyUnavailable as e:
        raise StartRefused(str(e)) from None


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
    cipher = volume_cipher(raw_conf)
    strict = bool(raw_conf["encryption"].get("from_creation"))
    node = open_node(data_dir / "storage" / name / "db", name, me.az, conf.protection_groups, retention, cipher, strict)
    node.load_damage(data_dir / "storage" / name / "damaged.json")
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
        loop.create_task(fault_hooks(node, data_dir / "storage" / name)),
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
    try:
        node.write_checkpoints()  # a clean stop replays no log on the next start
    except Refused as e:
        log.warning("checkpoints_not_written", error=e.message)
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
    os.umask(0o077)  # RocksDB's files and everything else this node makes: owner only
    import uvloop

    try:
        uvloop.run(serve(args.data_dir, args.name, args.retention_seconds, args.scrub_interval))
    except (StartRefused, atrest.KeyUnavailable) as e:
        log.error("node_refused_to_start", reason=str(e))
        sys.exit(f"storage node {args.name}: {e}")


if __name__ == "__main__":
    main()
