"""The engine's RowStore on an instance: a cache of versioned rows over the shared volume.

Storage key layout (what storage nodes see):

    table_id (4 bytes, big-endian) + engine key       -> encoded row (engine.codec)

A table starts in protection group ``table_id % pgs`` (PG 0 also holds every COMMIT
record); when that PG passes the size limit the volume grows by a PG and the table's new
rows go there (``server.placement``: the map, logged through PG 0).

* ``WriterVolume`` -- the writer.  ``commit`` turns a transaction's writes into redo
  records (contiguous LSNs, back-linked per PG, ending in a COMMIT record = CPL), applies
  them to the cache (invisible until the VDL passes them), sends them to all six segments
  in one Append per node per batch, and returns once the VDL covers the commit.  It also
  publishes the records to readers (``redo.RedoPublisher``).
* ``ReaderVolume`` -- a reader.  Applies the writer's redo stream to the tables it caches
  (records for other tables are dropped) and reads the rest from storage at its applied
  point.  Always read-only.

Tables are cached whole: the first statement that touches a table loads it from one
segment that is complete at the read point (no quorum read); from then on the cache is
kept current by commits (writer) or redo (reader).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from itertools import islice
import random
import struct
import time
from typing import Any, Iterable

import structlog

from engine.api import Key, Row
from engine.errors import StorageUnavailable, TransactionResolutionUnknown
from engine.gcpause import gc_paused
from engine.memstore import TableVersions, VersionedTables, dropped_error
from engine.waits import wait_until
from server.config import DEFAULT_PG_SIZE_LIMIT, ClusterConf
from server.placement import PLACEMENT_TABLE, Placement, entry_key, entry_value
from server.quorum import ConsistencyTracker
from server.recovery import RecoveredVolume, quorum_sets, recover
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.mtls import InternalTls
from storage.protocol import AddPgs, encode_records
from storage.protocol import Scan as P_Scan
from storage.records import (
    COMMIT, CONTROL_PG, DELETE, DELETE_PREFIX, LSN_ALLOCATION_LIMIT, PUT, PUTS, LogRecord, encode_commit_value,
    encode_puts, record_versions,
)

_TID = struct.Struct(">I")
_LARGE_COMMIT = 20_000  # writes; bigger commits are built in slices (see _commit_large)
_PUTS_ROWS = 400  # row writes per PUTS record of a large commit
_LARGE_GROUP = 16  # PUTS records per Append of a large commit
_LARGE_WINDOW = 4  # Appends of one large commit sent ahead of the VCL
_APPLY_SLICE = 5_000  # writes of a large commit applied to the cache between yields
# Group commit: at most this many batches on their way to a write quorum; commits arriving
# meanwhile wait in the next batch (a bigger one: fewer Appends for the storage nodes to
# take, each costing them about as much CPU as the fsync).  With one client there is never
# a batch in flight when a commit arrives, so nothing waits.
_BATCHES_IN_FLIGHT = int(os.environ.get("BOREALIS_BATCHES_IN_FLIGHT", "2"))
_UNSTABLE_SWEEP = 4_096  # records kept for resending past which stable ones are swept out of order
_RESEND_GROUP = 64  # records per Append when resending (PUTS records are up to ~400 rows each)
_HOLD_RECORDS = 1_000  # a batch this big goes out at once (bulk commits)
RECORD_OVERHEAD = 32  # bytes a record costs besides key and value (as storage.node counts)
log = structlog.get_logger("volume")


def storage_key(table_id: int, key: Key) -> bytes:
    return _TID.pack(table_id) + key


def _data_record(lsn: int, pg: int, prev: int, txid: int, tid: int, key: Key, row: Row | None, epoch: int,
                 encode: Any) -> LogRecord:
    """The redo record of one row write (None = delete)."""
    if row is None:
        return LogRecord.make(lsn, pg, prev, txid, DELETE, _TID.pack(tid) + key, b"", epoch)
    return LogRecord.make(lsn, pg, prev, txid, PUT, _TID.pack(tid) + key, encode(row), epoch)


def _apply_puts(tables: dict, rec: LogRecord, lsn: int, decode: Any, horizon: int) -> None:
    """A reader applies a PUTS record's row writes to the tables it caches."""
    t = None
    t_tid = -1
    for skey, value in record_versions(rec):
        tid = _TID.unpack_from(skey)[0]
        if tid != t_tid:
            t_tid, t = tid, tables.get(tid)
        if t is not None:
            t.add(skey[4:], lsn, None if value is None else decode(value), horizon)


def split_storage_key(skey: bytes) -> tuple[int, Key]:
    return _TID.unpack_from(skey)[0], skey[4:]


def tables_written(recs: list[LogRecord]) -> set[int]:
    """The table ids the data records ``recs`` write."""
    out: set[int] = set()
    for r in recs:
        if r.kind == PUTS:
            out.update(split_storage_key(skey)[0] for skey, _ in record_versions(r))
        elif r.kind != COMMIT:
            out.add(split_storage_key(r.key)[0])
    return out


class _Volume(VersionedTables):
    """What writer and reader share: node clients, table loading, PG placement."""

    def __init__(self, conf: ClusterConf, codec: Any, data_dir: str | None = None) -> None:
        super().__init__()
        self.conf = conf
        self.data_dir = data_dir  # to follow storage membership changes in cluster.json
        self._conf_stamp: tuple[int, int, int] | None = None
        self.pgs = conf.protection_groups
        self.placement = Placement(base=conf.protection_groups)
        self.codec = codec
        # mutual TLS to the storage nodes (no data dir: the simulation, whose nodes are not TCP)
        self.tls = InternalTls.load(data_dir) if data_dir is not None else None
        self.nodes = [NodeClient(s.name, conf.host, s.port, s.az, tls=self.tls) for s in conf.storage_nodes]
        self._loading: dict[int, asyncio.Future] = {}
        self.epoch = 0
        self.state = "starting"
        # Per PG, the LSN of its last record <= the read point.  A segment's SCL only moves
        # when its PG gets records, so reads of PG p are issued at this LSN (same answer
        # as at the read point, and answerable by any segment complete to it).
        self.durable_tails: dict[int, int] = {}

    def pg_of(self, table_id: int) -> int:
        """The PG new rows of ``table_id`` go to."""
        return self.placement.head(table_id)

    def forget_table(self, table_id: int) -> None:
        super().forget_table(table_id)
        self.placement.heads.pop(table_id, None)

    def _refresh_membership(self) -> bool:
        """Follow ``cluster.json``'s storage nodes (a replacement adds one, then drops one)."""
        if self.data_dir is None:
            return False
        try:
            stamp = ClusterConf.stamp(self.data_dir)
            if stamp == self._conf_stamp:
                return False
            conf = ClusterConf.load(self.data_dir)
        except (OSError, ValueError, TypeError, KeyError):
            return False
        self._conf_stamp = stamp
        self.conf = conf
        wanted = {s.name: s for s in conf.storage_nodes}
        have = {n.name: n for n in self.nodes}
        changed = set(wanted) != set(have)
        for name in set(have) - set(wanted):
            have[name].close()
        self.nodes = [have.get(name) or NodeClient(name, conf.host, s.port, s.az, tls=self.tls) for name, s in wanted.items()]
        if changed:
            log.info("storage_membership", nodes=sorted(wanted), transition=conf.storage_transition)
        self._membership_changed(conf)
        return changed

    def _membership_changed(self, conf: ClusterConf) -> None:
        pass

    def _complete_nodes(self, pg: int, lsn: int) -> list[NodeClient]:
        """Segments believed complete at ``lsn`` first (others after, as a fallback)."""
        return list(self.nodes)

    async def ensure_loaded(self, table_ids: Iterable[int]) -> None:
        for tid in table_ids:
            # A load that began before the cache was reset (a reader re-subscribing, a
            # promotion) filled the old cache: look again, and load anew if needed.
            for _attempt in range(3):
                t = self.tables.get(tid)
                if t is not None and t.loaded_at is not None:
                    break
                if self.is_dropped(tid):  # a statement planned before a DROP TABLE commit
                    raise dropped_error(tid)
                fut = self._loading.get(tid)
                if fut is None:
                    fut = asyncio.ensure_future(self._load(tid))
                    self._loading[tid] = fut
                    fut.add_done_callback(lambda _f, tid=tid: self._loading.pop(tid, None))
                await asyncio.shield(fut)
            else:
                raise StorageUnavailable(f"table {tid} could not be loaded: the instance's cache was reset meanwhile")

    async def _placement_ready(self, at: int) -> None:
        """The placement map must cover the read point (readers: see ReaderVolume)."""

    async def _load(self, tid: int) -> None:
        t = self.tables.get(tid)
        if t is None:
            t = self.tables[tid] = TableVersions()  # from now on commits/redo land here too
        at = self.snapshot()
        await self._placement_ready(at)
        chain = self.placement.chain(tid)
        prefix = _TID.pack(tid)
        decode = self.codec.decode_row
        if len(chain) == 1:
            items = await self._scan_pg(tid, chain[0], prefix, at, False)
            with gc_paused():  # a big table is millions of new objects at once (engine.gcpause)
                for skey, lsn, value in items:
                    t.add(skey[4:], lsn, decode(value))
        else:
            # Rows spread over the table's PGs: the newest version of each key wins, a
            # delete in a newer PG hides the key's older versions in older PGs.
            newest: dict[bytes, tuple[int, bytes | None]] = {}
            for pg in chain:
                for skey, lsn, value in await self._scan_pg(tid, pg, prefix, at, True):
                    seen = newest.get(skey)
                    if seen is None or lsn > seen[0]:
                        newest[skey] = (lsn, value)
            with gc_paused():
                for skey in sorted(newest):
                    lsn, value = newest[skey]
                    if value is not None:
                        t.add(skey[4:], lsn, decode(value))
        t.loaded_at = at

    async def _scan_pg(self, tid: int, pg: int, prefix: bytes, at: int, deletes: bool) -> list:
        """The table's versions in one PG at ``at``, from one segment complete there."""
        at_pg = min(at, self.durable_tails.get(pg, 0))
        deadline = time.monotonic() + 30.0
        while True:
            candidates = self._complete_nodes(pg, at_pg)
            errors = []
            for node in candidates:
                try:
                    return await self._scan_all(node, pg, prefix, at_pg, deletes)
                except (NodeUnavailable, NodeError) as e:
                    errors.append(f"{node.name}: {e}")
            if time.monotonic() > deadline:
                raise StorageUnavailable(f"no storage segment could serve table {tid} at LSN {at}: {'; '.join(errors)}")
            await asyncio.sleep(0.1)

    @staticmethod
    async def _scan_all(node: NodeClient, pg: int, prefix: bytes, at: int,
                        deletes: bool = False) -> list[tuple[bytes, int, bytes]]:
        out: list[tuple[bytes, int, bytes]] = []
        after = None
        while True:
            res = await node.call(P_Scan, pg=pg, prefix=prefix, at_lsn=at, after=after, limit=10_000, deletes=deletes)
            out.extend(res.items)
            if res.done or not res.items:
                return out
            after = res.items[-1][0]

    async def _connect_all(self) -> None:
        async def one(n: NodeClient) -> None:
            try:
                await n.connect(timeout=1.0)
            except NodeUnavailable:
                pass

        await asyncio.gather(*(one(n) for n in self.nodes))


async def recover_volume(nodes: list[NodeClient], conf: ClusterConf,
                         pgs: int) -> tuple[RecoveredVolume, list[set[str]]]:
    """Storage recovery for a new writer (server.recovery), retried until it succeeds."""
    while True:
        try:
            sets = quorum_sets([n.name for n in nodes], getattr(conf, "storage_transition", None))
            return await recover(nodes, pgs, quorum_sets=sets), sets
        except TimeoutError as e:  # e.g. the truncation missed a write quorum: start over
            log.warning("recovery_retry", error=str(e))
            await asyncio.sleep(0.5)


class WriterVolume(_Volume):
    read_only = False

    def __init__(self, conf: ClusterConf, codec: Any, *, commit_timeout: float | None = None,
                 data_dir: str | None = None) -> None:
        super().__init__(conf, codec, data_dir)
        self.commit_timeout = commit_timeout if commit_timeout is not None else float(
            os.environ.get("BOREALIS_COMMIT_TIMEOUT", "60")
        )
        self.tracker: ConsistencyTracker | None = None
        self._next_lsn = 1
        self._tails: dict[int, int] = {}
        self._batch: list[LogRecord] = []
        self._flush_scheduled = False
        self._batches_in_flight = 0  # sent by _flush and not yet acked (or failed) by a write quorum
        self._batch_held = False  # _flush kept the batch back (see _BATCHES_IN_FLIGHT)
        self._commit_waiters: list[tuple[int, asyncio.Future]] = []  # (commit lsn, future) in LSN order
        self._inflight: dict[str, int] = {}  # node -> appends awaiting ack
        self._down: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self._tail_log: deque[tuple[int, int]] = deque()  # (lsn, pg) of records above the VDL
        # Records not yet on a write quorum: re-sent to segments that reconnect or stall, so a
        # batch lost by every node (all killed before their fsync) is never a permanent hole.
        self._unstable: deque[LogRecord] = deque()
        self._sweep_at = _UNSTABLE_SWEEP  # see _acked
        self.publisher = None  # redo.RedoPublisher, set by the instance
        # Volume growth (server.placement): bytes of log appended per PG, the limit, and
        # the head PGs that passed it (the next commit writing there adds a PG first).
        self.pg_bytes: dict[int, int] = {}
        self.pg_limit = conf.pg_limit() if hasattr(conf, "pg_limit") else DEFAULT_PG_SIZE_LIMIT
        self._full: set[int] = set()
        self._grow_lock = asyncio.Lock()
        self._vdl_told = 0  # the highest VDL sent to storage (on an Append)
        self.batches_sent = 0  # Appends (to all six) sent by _flush; with commits_done: the batching
        self.commits_done = 0
        self.recovery_timings: dict[str, float] = {}

    # -- startup -------------------------------------------------------------------------
    async def start(self) -> None:
        self.state = "recovering"
        await self._connect_all()
        rec, sets = await recover_volume(self.nodes, self.conf, self.pgs)
        await self._open(rec, sets)

    @classmethod
    async def from_reader(cls, reader: "ReaderVolume", rec: RecoveredVolume, sets: list[set[str]], *,
                          commit_timeout: float | None = None) -> "WriterVolume":
        """The writer volume of a reader promoted in place (server.promote): ``rec`` is the
        recovery the reader ran (new epoch, VDL), and the reader's cache -- already brought
        to exactly ``rec.vdl`` by ``ReaderVolume.settle_at`` -- becomes the writer's, with its
        node connections and placement map.  The reader keeps an empty cache."""
        w = cls(reader.conf, reader.codec, commit_timeout=commit_timeout, data_dir=reader.data_dir)
        for n in w.nodes:
            n.close()
        w.nodes = reader.nodes
        w.placement = reader.placement
        w.tables, reader.tables = reader.tables, {}
        # Snapshots pinned by reader sessions still finishing a statement (they are being
        # ended) keep their versions: the writer prunes nothing they can see.  Reader and
        # writer transaction ids never collide (the writer's carry the epoch).
        w._pins = reader._pins
        w._closed, w._forget = reader._closed, reader._forget  # dropped tables (memstore)
        indexes = reader.__dict__.pop("_borealis_indexes", None)  # engine.indexes: maps of the cached tables
        if indexes is not None:
            w.__dict__["_borealis_indexes"] = indexes
        w._vdl = rec.vdl
        await w._open(rec, sets)
        return w

    async def _open(self, rec: RecoveredVolume, sets: list[set[str]]) -> None:
        """Take over the volume as ``recover`` left it: epoch, VDL, back-links, SCLs."""
        self.epoch = rec.epoch
        self.recovery_timings = rec.timings  # step -> seconds (bench.recovery prints them)
        self._vdl = rec.vdl
        self._next_lsn = rec.next_lsn
        self._tails = dict(rec.tails)
        self.durable_tails = dict(rec.tails)
        self.placement.count = max(self.placement.count, rec.pgs)
        self.tracker = ConsistencyTracker([n.name for n in self.nodes], rec.pgs, start_vdl=rec.vdl)
        self.tracker.set_quorum_sets(sets)
        self.tracker.last_allocated = rec.next_lsn - 1
        self.tracker.vcl = rec.next_lsn - 1
        for name, scl in rec.scl.items():
            self.tracker.ack(name, scl)
        self._conf_stamp = None
        self._refresh_membership()
        if rec.pgs > self.placement.base:  # grown: AddPgs reached a quorum before any map entry
            await self._load_placement()
        self.pg_bytes = {pg: rec.pg_bytes.get(pg, 0) for pg in range(self.placement.count)}
        self._note_sizes({pg: 0 for pg in self.pg_bytes})
        self._txids = iter(range((self.epoch << 32) + 1, 1 << 62))
        self._tasks.append(asyncio.ensure_future(self._reconnect_loop()))
        self.state = "available"
        log.info("writer_volume_ready", epoch=self.epoch, vdl=self._vdl, next_lsn=self._next_lsn)

    async def _load_placement(self) -> None:
        """The placement map as of the recovered VDL, from PG 0."""
        prefix = _TID.pack(PLACEMENT_TABLE)
        for skey, _lsn, value in await self._scan_pg(PLACEMENT_TABLE, 0, prefix, self._vdl, False):
            self.placement.apply_entry(skey[4:], value)
        if self.placement.successor:
            log.info("placement_loaded", pgs=self.placement.count, successor=self.placement.successor)

    async def _grow(self, full: int) -> None:
        """Add a PG to the volume for the tables whose head PG ``full`` passed the limit:
        create its segments on the storage nodes (a write quorum of every quorum set must
        hold them), then log ``successor[full] = new`` through PG 0 in a transaction of its
        own.  Commits allocated after this write the tables' rows to the new PG."""
        async with self._grow_lock:
            if full in self.placement.successor:
                return  # another commit grew it meanwhile
            new = self.placement.count
            await self._create_pgs(new + 1)
            assert self.tracker is not None
            self.tracker.add_pgs(new + 1)
            self.pg_bytes.setdefault(new, 0)
            tails = self._tails
            txid = self.new_txid()
            lsn = self._next_lsn
            put = LogRecord.make(lsn, CONTROL_PG, tails.get(CONTROL_PG, 0), txid, PUT,
                                 _TID.pack(PLACEMENT_TABLE) + entry_key(full), entry_value(new), self.epoch)
            commit = LogRecord.make(lsn + 1, CONTROL_PG, lsn, txid, COMMIT, b"",
                                    encode_commit_value({CONTROL_PG: lsn}), self.epoch)
            self._append_control([put, commit])
            self.placement.add(full, new)
            self._full.discard(full)
            log.info("volume_grew", full_pg=full, new_pg=new, pgs=self.placement.count,
                     full_bytes=self.pg_bytes.get(full, 0), limit=self.pg_limit, lsn=lsn)

    def _append_control(self, records: list[LogRecord]) -> None:
        """Allocate and send a transaction of PG 0 records nobody waits for."""
        assert self.tracker is not None
        for r in records:
            self.tracker.track(r.lsn, r.pg, r.kind == COMMIT)
            self._tails[r.pg] = r.lsn
            self.pg_bytes[r.pg] = self.pg_bytes.get(r.pg, 0) + len(r.key) + len(r.value) + RECORD_OVERHEAD
        self._next_lsn = records[-1].lsn + 1
        self._tail_log.extend((r.lsn, r.pg) for r in records)
        self._queue(records)
        self._schedule_flush()

    def _queue(self, records: list[LogRecord]) -> None:
        """Allocated and tracked records on their way: into the next Append, kept for
        resending until the VCL passes them, and onto the redo stream to the readers."""
        self._batch.extend(records)
        self._unstable.extend(records)
        if self.publisher is not None:
            self.publisher.publish(records)

    async def _create_pgs(self, count: int) -> None:
        """``AddPgs(count)`` on every storage node; returns once a write quorum of each
        quorum set holds the new segments (the rest learn them by gossip or by the first
        Append naming them)."""
        assert self.tracker is not None
        sets = self.tracker.quorum_sets
        done: set[str] = set()
        while True:
            async def one(n: NodeClient) -> None:
                try:
                    await n.call(AddPgs, timeout=5.0, epoch=self.epoch, count=count)
                    done.add(n.name)
                except NodeError as e:
                    if e.code == "stale_epoch":
                        self._fenced()
                except NodeUnavailable:
                    pass

            await asyncio.gather(*(one(n) for n in self.nodes if n.name not in done))
            if all(len(done & s) >= self.tracker.write_quorum for s in sets):
                return
            if self.state == "fenced":
                raise StorageUnavailable("this instance is no longer the writer (fenced by a newer epoch)")
            await asyncio.sleep(0.2)

    async def _reconnect_loop(self) -> None:
        last_vcl = -1
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(0.5)
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancel swallowed by a racing wait_for (3.11)
            self._refresh_membership()
            for n in self.nodes:
                if not n.connected:
                    try:
                        await n.connect(timeout=0.5)
                        self._down.discard(n.name)
                        self._inflight[n.name] = 0
                        log.info("storage_node_reconnected", node=n.name)
                        self._resend(n)
                    except NodeUnavailable:
                        self._down.add(n.name)
            if self._batch:
                self._flush()  # also a batch held back behind appends that never land
            else:
                self._publish_idle_vdl()
            await self._check_epoch()
            vcl = self.tracker.vcl if self.tracker else 0
            if self._unstable and vcl == last_vcl:
                for n in self.nodes:  # stalled: give every segment what it may have lost
                    if n.connected:
                        self._resend(n)
                await self._poll_scls()
            last_vcl = vcl

    def _publish_idle_vdl(self) -> None:
        """Appends carry the VDL of the moment they were sent, so after the last commit of
        a burst storage knows an older VDL; an idle writer tells it the current one (an
        empty Append).  Recovery walks COMMIT records only above the highest VDL storage
        knows, so this keeps its work small after a quiet crash, however long the log."""
        vdl = self._vdl
        if vdl <= self._vdl_told:
            return
        self._vdl_told = vdl
        for node in self.nodes:
            if node.connected and self._inflight.get(node.name, 0) == 0:
                self._send(node, [], vdl)

    def _membership_changed(self, conf: ClusterConf) -> None:
        if self.tracker is None:
            return
        names = {s.name for s in conf.storage_nodes}
        t = conf.storage_transition or {}
        if t.get("old") in names and t.get("new") in names:
            # During a replacement a write needs 4/6 of the old set AND 4/6 of the new set.
            self.tracker.set_quorum_sets([names - {t["new"]}, names - {t["old"]}])
        else:
            self.tracker.set_quorum_sets([names])

    async def _check_epoch(self) -> None:
        """An idle writer learns it was fenced from storage, not only from a refused append."""
        for n in self.nodes:
            if n.connected:
                try:
                    st = await n.state(timeout=1.0)
                except (NodeUnavailable, NodeError):
                    continue
                if st.epoch > self.epoch:
                    log.error("fenced_by_newer_epoch", node=n.name, epoch=self.epoch, newer=st.epoch)
                    self._fenced()
                return

    async def _poll_scls(self) -> None:
        """Segments that filled holes by gossip send no ack: ask them for their SCLs."""
        assert self.tracker is not None
        for n in self.nodes:
            if not n.connected:
                continue
            try:
                st = await n.state(timeout=1.0)
            except (NodeUnavailable, NodeError):
                continue
            if st.epoch == self.epoch and self.tracker.ack(n.name, dict(st.scl)):
                self._vdl_advanced()

    def _resend(self, node: NodeClient) -> None:
        assert self.tracker is not None
        scl = self.tracker.scl.get(node.name, {})
        missing = [r for r in self._unstable if r.lsn > scl.get(r.pg, 0)]
        if self._inflight.get(node.name, 0) > 64:
            return
        for start in range(0, len(missing), _RESEND_GROUP):  # frames stay far below MAX_FRAME
            self._send(node, missing[start:start + _RESEND_GROUP], self._vdl)

    def _complete_nodes(self, pg: int, lsn: int) -> list[NodeClient]:
        assert self.tracker is not None
        good = set(self.tracker.segments_complete_at(pg, lsn))
        first = [n for n in self.nodes if n.name in good and n.connected]
        random.shuffle(first)
        return first + [n for n in self.nodes if n not in first]

    # -- commit ----------------------------------------------------------------------------
    async def commit(self, txid: int, writes: dict[tuple[int, Key], Row | None]) -> int:
        dropped: tuple[int, ...] = getattr(writes, "dropped", ())  # engine.api.WriteSet: DROP TABLE
        if not writes and not dropped:
            return self._vdl
        tracker = self.tracker
        assert tracker is not None
        while tracker.last_allocated - tracker.vcl > LSN_ALLOCATION_LIMIT - len(writes) - 1:
            await asyncio.sleep(0.01)  # LAL back-pressure: storage is far behind
        if len(writes) > _LARGE_COMMIT:
            return await self._commit_large(txid, writes, dropped)
        # 1. Build everything that can fail (row encoding, the cache apply) before any LSN
        #    is allocated or tracked: a tracked LSN that is never sent would hold the VCL
        #    (and every later commit) back forever.
        lsn = self._next_lsn
        records, touched, new_tails = self._build(txid, writes, lsn, dropped)
        commit_lsn = records[-1].lsn
        self._apply_commit(commit_lsn, writes)  # invisible until the VDL reaches commit_lsn
        if dropped:
            self.note_dropped(commit_lsn, dropped)
        # 2. Allocate, track and queue: nothing here can fail.
        track = tracker.track
        sizes = self.pg_bytes
        for r in records:
            track(r.lsn, r.pg, r.kind == COMMIT)
            sizes[r.pg] = sizes.get(r.pg, 0) + len(r.key) + len(r.value) + RECORD_OVERHEAD
        self._tails.update(new_tails)
        self._next_lsn = commit_lsn + 1
        self._tail_log.extend((r.lsn, r.pg) for r in records)
        self._queue(records)
        self._schedule_flush()
        fut = asyncio.get_running_loop().create_future()
        self._commit_waiters.append((commit_lsn, fut))
        self._note_sizes(touched)
        await self._await_durable(commit_lsn, fut)
        self.commits_done += 1
        return commit_lsn

    def _build(self, txid: int, writes: dict[tuple[int, Key], Row | None], lsn: int,
               dropped: tuple[int, ...] = ()) -> tuple[list[LogRecord], dict[int, int], dict[int, int]]:
        """The redo records of a commit from ``lsn`` on (the range tombstones of the
        ``dropped`` tables after the row writes, its COMMIT record last), the highest LSN
        per touched PG and the new per-PG tails.  Changes no state."""
        encode = self.codec.encode_row
        epoch = self.epoch
        tails = self._tails
        new_tails: dict[int, int] = {}
        records: list[LogRecord] = []
        heads = self.placement.heads
        for (tid, key), row in writes.items():
            pg = heads.get(tid)
            if pg is None:
                pg = self.placement.head(tid)
            prev = new_tails.get(pg)
            if prev is None:
                prev = tails.get(pg, 0)
            records.append(_data_record(lsn, pg, prev, txid, tid, key, row, epoch, encode))
            new_tails[pg] = lsn
            lsn += 1
        for r in self._drop_records(txid, dropped, lsn, lambda pg: new_tails.get(pg, tails.get(pg, 0))):
            records.append(r)
            new_tails[r.pg] = r.lsn
            lsn += 1
        touched = dict(new_tails)
        prev = new_tails.get(CONTROL_PG)
        if prev is None:
            prev = tails.get(CONTROL_PG, 0)
        records.append(LogRecord.make(lsn, CONTROL_PG, prev, txid, COMMIT, b"", encode_commit_value(touched), epoch))
        new_tails[CONTROL_PG] = lsn
        return records, touched, new_tails

    def _drop_records(self, txid: int, dropped: tuple[int, ...], lsn: int, prev_of: Any) -> list[LogRecord]:
        """A DELETE_PREFIX record (``storage.records``) for each dropped table in every PG
        that can hold its rows (the table's placement chain), from ``lsn`` on;
        ``prev_of(pg)`` is the PG's back-link before them."""
        out: list[LogRecord] = []
        prevs: dict[int, int] = {}
        for tid in dropped:
            for pg in self.placement.chain(tid):
                prev = prevs.get(pg)
                if prev is None:
                    prev = prev_of(pg)
                out.append(LogRecord.make(lsn, pg, prev, txid, DELETE_PREFIX, _TID.pack(tid), b"", self.epoch))
                prevs[pg] = lsn
                lsn += 1
        return out

    def _apply_commit(self, lsn: int, writes: dict[tuple[int, Key], Row | None]) -> None:
        """Apply a commit's writes to the cache at ``lsn``; if that fails part way (an index
        hook), drop the versions it added: the LSN is not allocated and will be reused."""
        try:
            self.apply(lsn, writes)
        except BaseException:
            for tid, key in writes:
                t = self.tables.get(tid)
                if t is not None:
                    t.drop_version(key, lsn)
            raise

    def _note_sizes(self, touched: dict[int, int]) -> None:
        """A PG that passed the size limit: grow the volume in the background (commits go
        on writing to it until the new PG's map entry is allocated)."""
        limit = self.pg_limit
        sizes = self.pg_bytes
        for pg in (*touched, CONTROL_PG):
            if sizes.get(pg, 0) > limit and pg not in self.placement.successor and pg not in self._full:
                self._full.add(pg)
                self._tasks.append(asyncio.ensure_future(self._grow_quietly(pg)))

    async def _grow_quietly(self, full: int) -> None:
        try:
            await self._grow(full)
        except StorageUnavailable as e:  # fenced
            log.warning("volume_growth_stopped", pg=full, error=str(e))
        except Exception:  # noqa: BLE001 -- retried by the next commit that passes the limit
            log.exception("volume_growth_failed", pg=full)
            self._full.discard(full)

    async def _await_durable(self, lsn: int, fut: asyncio.Future) -> None:
        """Wait for VDL >= lsn.  Fails only when the volume makes no progress at all for
        ``commit_timeout`` seconds (no write quorum), never because a big commit is slow."""
        tracker = self.tracker
        assert tracker is not None
        loop = asyncio.get_running_loop()
        last_vcl = tracker.vcl
        stalled_since = loop.time()
        while True:
            if await wait_until(fut, min(1.0, max(self.commit_timeout, 0.01))):
                fut.result()
                return
            now = loop.time()
            if tracker.vcl != last_vcl:
                last_vcl, stalled_since = tracker.vcl, now
            elif now - stalled_since >= self.commit_timeout:
                raise TransactionResolutionUnknown(
                    "could not reach a write quorum of storage nodes: the outcome of the commit is unknown",
                    detail=f"commit LSN {lsn} is not durable on 4 of 6 segments and the volume made no progress "
                    f"for {self.commit_timeout:.0f} s; the transaction may still become durable when storage recovers",
                    hint="Do not assume the transaction failed: check whether its changes are present before "
                    "retrying it.",
                ) from None

    async def _commit_large(self, txid: int, writes: dict[tuple[int, Key], Row | None],
                            dropped: tuple[int, ...] = ()) -> int:
        """A commit too big for one Append (bulk COPY, INSERT ... SELECT, a table rewrite).

        Its row writes travel as PUTS records of up to ``_PUTS_ROWS`` rows of one PG each
        (``storage.records``), so the writer, the six segments and the readers do
        per-record work once per few hundred rows.  In four steps, yielding to the event
        loop between slices:

        1. encode the rows into the records' values (a row that cannot be encoded fails
           the commit here, before anything is allocated);
        2. allocate LSNs, back-links and tracking for every record and the COMMIT record
           (synchronous: keeps LSN order among commits);
        3. apply the writes to the cache (invisible until the VDL passes the commit LSN);
           if that fails part way, the versions added are dropped and the allocated LSNs
           are filled with empty PUTS records -- no rows and no COMMIT ever reach storage,
           and the VCL is not held back by LSNs never sent;
        4. send ``_LARGE_GROUP`` records per Append, at most ``_LARGE_WINDOW`` Appends
           ahead of the VCL (storage is never flooded, nothing is dropped for a busy node,
           the records kept for resending stay few), the COMMIT record last: a crash
           before it leaves none of the rows visible (recovery truncates above the VDL)."""
        tracker = self.tracker
        assert tracker is not None
        encode = self.codec.encode_row
        head = self.placement.head
        # 1. values
        runs: list[tuple[int, int]] = []  # (pg, rows) of each PUTS record, in write order
        values: list[bytes] = []
        it = iter(writes)
        row_of = writes.__getitem__
        t_tid, prefix, pg = -1, b"", 0
        left = len(writes)
        held = None  # a key read that starts the next record (its PG differs)
        while left:
            flat: list[bytes | None] = []
            push = flat.append
            run_pg = -1
            with gc_paused():
                while left and len(flat) < 2 * _PUTS_ROWS:
                    if held is not None:
                        k, held = held, None
                    else:
                        k = next(it)
                    tid = k[0]
                    if tid != t_tid:
                        t_tid, prefix, pg = tid, _TID.pack(tid), head(tid)
                    if pg != run_pg and flat:
                        held = k
                        break
                    run_pg = pg
                    row = row_of(k)
                    push(prefix + k[1])
                    push(None if row is None else encode(row))
                    left -= 1
            runs.append((run_pg, len(flat) // 2))
            values.append(encode_puts(flat))
            if len(values) % _LARGE_GROUP == 0:
                await asyncio.sleep(0)
        # 2. LSNs
        epoch = self.epoch
        tails = self._tails
        touched: dict[int, int] = {}
        sizes = self.pg_bytes
        records: list[LogRecord] = []
        lsn = self._next_lsn
        for (pg, _n), value in zip(runs, values):
            records.append(LogRecord.make(lsn, pg, tails.get(pg, 0), txid, PUTS, b"", value, epoch))
            sizes[pg] = sizes.get(pg, 0) + len(value) + RECORD_OVERHEAD
            tails[pg] = lsn
            touched[pg] = lsn
            tracker.track(lsn, pg, False)
            lsn += 1
        del values
        for r in self._drop_records(txid, dropped, lsn, lambda pg: tails.get(pg, 0)):
            records.append(r)
            sizes[r.pg] = sizes.get(r.pg, 0) + len(r.key) + RECORD_OVERHEAD
            tails[r.pg] = touched[r.pg] = r.lsn
            tracker.track(r.lsn, r.pg, False)
            lsn += 1
        commit = LogRecord.make(lsn, CONTROL_PG, tails.get(CONTROL_PG, 0), txid, COMMIT, b"",
                                encode_commit_value(touched), epoch)
        commit_lsn = lsn
        tails[CONTROL_PG] = commit_lsn
        tracker.track(commit_lsn, CONTROL_PG, True)
        sizes[CONTROL_PG] = sizes.get(CONTROL_PG, 0) + len(commit.value) + RECORD_OVERHEAD
        self._tail_log.extend((r.lsn, r.pg) for r in records)
        self._tail_log.append((commit_lsn, CONTROL_PG))
        self._next_lsn = commit_lsn + 1
        # 3. cache
        try:
            await self._apply_large(commit_lsn, writes)
            if dropped:
                self.note_dropped(commit_lsn, dropped)
        except BaseException:
            empty = encode_puts([])
            fillers = [LogRecord.make(r.lsn, r.pg, r.prev_lsn, txid, PUTS, b"", empty, epoch)
                       for r in (*records, commit)]
            # Not ``_queue``: readers buffer records by transaction until its COMMIT, and
            # these fill LSNs of a transaction that never commits.
            self._unstable.extend(fillers)
            self._batch.extend(fillers)
            self._schedule_flush()
            raise
        # 4. storage
        self._note_sizes(touched)
        window: deque[int] = deque()  # last LSN of each Append of this commit not yet below the VCL
        sent = 0
        try:
            for start in range(0, len(records), _LARGE_GROUP):
                await self._send_large(records[start:start + _LARGE_GROUP], window, commit_lsn)
                sent = start + _LARGE_GROUP
        except BaseException:
            # Storage made no progress for commit_timeout (or we were cancelled): every LSN
            # of this commit is tracked, so all of it must still reach storage -- else the
            # VCL stops below it and no later commit ever completes.  Queue the rest with
            # the COMMIT record; it becomes durable if storage comes back, as the error says.
            self._queue([*records[sent:], commit])
            self._schedule_flush()
            raise
        fut = asyncio.get_running_loop().create_future()
        self._commit_waiters.append((commit_lsn, fut))
        self._commit_waiters.sort(key=lambda w: w[0])  # a smaller commit may have queued meanwhile
        await self._send_large([commit], window, commit_lsn)
        await self._await_durable(commit_lsn, fut)
        return commit_lsn

    async def _apply_large(self, lsn: int, writes: dict[tuple[int, Key], Row | None]) -> None:
        """A large commit's writes into the cache at ``lsn``, yielding between slices; on
        failure every version it added is dropped again."""
        horizon = self.horizon()
        self.collect(horizon)
        table = self.table
        done = 0
        try:
            it = iter(writes.items())
            t_tid, t = -1, None
            while done < len(writes):
                with gc_paused():
                    for (tid, key), row in islice(it, _APPLY_SLICE):
                        if tid != t_tid:
                            t_tid, t = tid, table(tid)
                        done += 1
                        t.add(key, lsn, row, horizon)  # type: ignore[union-attr]
                await asyncio.sleep(0)
        except BaseException:
            for tid, key in islice(writes, done):
                t = self.tables.get(tid)
                if t is not None:
                    t.drop_version(key, lsn)
            raise

    async def _send_large(self, records: list[LogRecord], window: deque[int], commit_lsn: int) -> None:
        """One Append of a big commit, once fewer than ``_LARGE_WINDOW`` of its earlier
        Appends are still above the VCL.  Waiting fails like a commit (StorageUnavailable)
        only when the volume makes no progress for ``commit_timeout``."""
        tracker = self.tracker
        assert tracker is not None
        loop = asyncio.get_running_loop()
        last_vcl, since = tracker.vcl, loop.time()
        while window:
            if tracker.vcl >= window[0]:
                window.popleft()
                continue
            if len(window) < _LARGE_WINDOW:
                break
            await asyncio.sleep(0.002)
            now = loop.time()
            if tracker.vcl != last_vcl:
                last_vcl, since = tracker.vcl, now
            elif now - since >= max(self.commit_timeout, 0.01):
                raise TransactionResolutionUnknown(
                    "could not reach a write quorum of storage nodes: the outcome of the commit is unknown",
                    detail=f"commit LSN {commit_lsn} is not durable on 4 of 6 segments and the volume made no "
                    f"progress for {self.commit_timeout:.0f} s; the transaction may still become durable when "
                    "storage recovers",
                    hint="Do not assume the transaction failed: check whether its changes are present before "
                    "retrying it.",
                )
        self._queue(records)
        self._flush()
        window.append(records[-1].lsn)
        await asyncio.sleep(0)  # let acks, heartbeats and other sessions in

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, True)

    def _flush(self, hold: bool = False) -> None:
        """Send the batch now.  ``hold`` (the end-of-turn flush): keep a small batch back
        while ``_BATCHES_IN_FLIGHT`` batches are on their way; it goes when one lands."""
        self._flush_scheduled = False
        batch = self._batch
        if not batch:
            return
        if hold and self._batches_in_flight >= _BATCHES_IN_FLIGHT and len(batch) < _HOLD_RECORDS:
            self._batch_held = True  # sent when a batch in flight lands, or by _reconnect_loop
            return
        self._batch_held = False
        self._batch = []
        vdl = self._vdl
        self._vdl_told = max(self._vdl_told, vdl)
        encoded = encode_records(batch)  # once, the same bytes for every segment
        self.batches_sent += 1
        nodes = [n for n in self.nodes if n.connected and self._inflight.get(n.name, 0) <= 64]
        # (a node down or frozen fills the hole from its peers: gossip)
        if not nodes:
            return
        self._batches_in_flight += 1
        need = min(self.tracker.write_quorum if self.tracker else 4, len(nodes))
        answered = [0]

        def landed() -> None:
            answered[0] += 1
            if answered[0] == need:
                self._batches_in_flight -= 1
                if self._batch_held:
                    self._schedule_flush()

        for node in nodes:
            self._send(node, encoded, vdl, landed)

    def _send(self, node: NodeClient, batch: Any, vdl: int, landed: Any = None) -> None:
        """One Append to one node; its ack is handled from the node connection's callback
        (no task per node and batch, and the VDL moves in the turn the 4th ack arrives)."""
        self._inflight[node.name] = self._inflight.get(node.name, 0) + 1

        def on_reply(ack: Any, exc: BaseException | None) -> None:
            try:
                self._acked(node, ack, exc)
            finally:
                if landed is not None:
                    landed()  # else _batches_in_flight never comes down again

        node.append_nowait(self.epoch, vdl, batch, on_reply)

    def _acked(self, node: NodeClient, ack: Any, exc: BaseException | None) -> None:
        self._inflight[node.name] = max(0, self._inflight.get(node.name, 1) - 1)
        if exc is not None:
            if isinstance(exc, NodeError):
                if exc.code == "stale_epoch":
                    log.error("fenced_by_newer_epoch", node=node.name, epoch=self.epoch)
                    self._fenced()
            else:  # NodeUnavailable
                self._down.add(node.name)
                self.tracker.forget_node(node.name)  # type: ignore[union-attr]
            return
        assert self.tracker is not None
        if self.tracker.ack(node.name, ack.scl):
            self._vdl_advanced()
        unstable = self._unstable
        vcl = self.tracker.vcl
        while unstable and unstable[0].lsn <= vcl:
            unstable.popleft()
        if len(unstable) > self._sweep_at:
            # A large commit's slices are queued after smaller commits with higher LSNs
            # (not in LSN order), so the head stays put until the whole large commit is
            # durable: drop what is stable anywhere.  Sweeps happen when the queue has
            # doubled since the last one, so their cost per ack stays constant.
            self._unstable = unstable = deque(r for r in unstable if r.lsn > vcl)
            self._sweep_at = max(_UNSTABLE_SWEEP, 2 * len(unstable))

    def _vdl_advanced(self) -> None:
        assert self.tracker is not None
        vdl = self.tracker.vdl
        self._vdl = vdl
        tail_log = self._tail_log
        tails = self.durable_tails
        while tail_log and tail_log[0][0] <= vdl:
            lsn, pg = tail_log.popleft()
            tails[pg] = lsn
        waiters = self._commit_waiters
        i = 0
        while i < len(waiters) and waiters[i][0] <= vdl:
            fut = waiters[i][1]
            if not fut.done():
                fut.set_result(None)
            i += 1
        if i:
            del waiters[:i]
        if self.publisher is not None:
            self.publisher.vdl_advanced(vdl)

    def _fenced(self) -> None:
        """A newer writer exists: this one must never acknowledge another commit."""
        self.state = "fenced"
        self.commit_timeout = 0.0
        for _, fut in self._commit_waiters:
            if not fut.done():
                fut.set_exception(TransactionResolutionUnknown(
                    "this instance is no longer the writer (fenced by a newer epoch): the outcome of the commit "
                    "is unknown"))
        self._commit_waiters.clear()
        os._exit(3)

    def status(self) -> dict[str, Any]:
        t = self.tracker
        return {
            "vcl": t.vcl if t else 0,
            "vdl": self._vdl,
            "epoch": self.epoch,
            "applied_lsn": self._vdl,
            "pgs": self.placement.count,
            "commits": self.commits_done,
            "batches": self.batches_sent,
        }


class ReaderVolume(_Volume):
    """Read-only cache kept current by the writer's redo stream (see ``server.redo``)."""

    read_only = True

    def __init__(self, conf: ClusterConf, codec: Any, data_dir: str | None = None) -> None:
        super().__init__(conf, codec, data_dir)
        self._pending: dict[int, list[LogRecord]] = {}  # txid -> records (not yet committed)
        self._ready: list[tuple[int, list[LogRecord]]] = []  # committed txns above the applied VDL
        self.writer_vdl = 0
        self.lag_ms = 0.0
        self._node_scl: dict[str, dict[int, int]] = {}
        self._tasks: list[asyncio.Task] = []
        # The placement map is complete once read from storage after the cache was last
        # reset; from then on redo keeps it current (entries are only ever added).
        self._placement_gen = 0
        self._placement_stale = True

    async def start(self) -> None:
        await self._connect_all()
        self._tasks.append(asyncio.ensure_future(self._poll_storage()))
        self.state = "available"

    def stop(self) -> None:
        """Stop the background tasks (the instance is being promoted)."""
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()

    # -- in-place promotion (server.promote) ----------------------------------------------
    def buffered_commits(self) -> dict[int, int]:
        """Commit LSN -> txid of the whole transactions received above the applied VDL."""
        out = {}
        for lsn, recs in self._ready:
            out[lsn] = recs[0].txid if recs else -1
        return out

    def buffered_tables(self, lsn: int) -> set[int]:
        """The tables the buffered commit at ``lsn`` writes (none when it is not buffered)."""
        return {t for c_lsn, recs in self._ready if c_lsn == lsn for t in tables_written(recs)}

    def settle_at(self, vdl: int, extra: list[tuple[int, list[LogRecord]]], drop: set[int]) -> list[int]:
        """Bring the cache to exactly ``vdl`` (the VDL a promotion recovered): apply the
        buffered commits up to it plus ``extra`` (commits read back from storage: (commit
        LSN, data records)), forget everything above it (storage truncated it), and drop the
        tables in ``drop`` and those whose load has not finished (a load started at the old
        read point would miss the commits applied here).  A commit LSN both buffered and in
        ``extra`` is applied once, from ``extra``: storage is the truth, and the caller drops
        the tables of such a buffered commit.  Returns the dropped table ids.
        Synchronous: no other code touches the cache meanwhile."""
        dropped = set()
        if vdl < self._vdl:  # cannot happen (the writer's VDL was durable); be safe
            log.error("promotion_vdl_below_applied", vdl=vdl, applied=self._vdl)
            dropped = set(self.tables)
            self.tables = {}
        if extra:
            replaced = {lsn for lsn, _ in extra}
            kept = [c for c in self._ready if c[0] not in replaced]
            self._ready = sorted(kept + extra, key=lambda c: c[0])
        else:
            self._ready.sort(key=lambda c: c[0])
        self._apply_upto(vdl)
        self._ready.clear()
        self._pending.clear()
        self._vdl = vdl
        self.writer_vdl = vdl
        for tid in list(self.tables):
            t = self.tables[tid]
            if tid in drop or t.loaded_at is None:
                del self.tables[tid]
                dropped.add(tid)
        return sorted(dropped)

    async def _poll_storage(self) -> None:
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancel swallowed by a racing wait_for (3.11)
            self._refresh_membership()
            for n in list(self.nodes):
                try:
                    st = await n.state(timeout=1.0)
                    self._node_scl[n.name] = dict(st.scl)
                except (NodeUnavailable, NodeError):
                    self._node_scl.pop(n.name, None)
            await asyncio.sleep(0.5)

    def _complete_nodes(self, pg: int, lsn: int) -> list[NodeClient]:
        good = [n for n in self.nodes if self._node_scl.get(n.name, {}).get(pg, 0) >= lsn]
        random.shuffle(good)
        return good + [n for n in self.nodes if n not in good]

    async def _placement_ready(self, at: int) -> None:
        if not self._placement_stale:
            return
        gen = self._placement_gen
        prefix = _TID.pack(PLACEMENT_TABLE)
        for skey, _lsn, value in await self._scan_pg(PLACEMENT_TABLE, 0, prefix, at, False):
            self.placement.apply_entry(skey[4:], value)
        if gen == self._placement_gen:
            self._placement_stale = False

    async def commit(self, txid: int, writes: dict) -> int:  # pragma: no cover - engine refuses first
        from engine.errors import ReadOnlyTransaction

        raise ReadOnlyTransaction("cannot execute a write in a read-only transaction")

    # -- redo ------------------------------------------------------------------------------
    def stream_started(self, vdl: int, tails: dict[int, int]) -> None:
        """A (new) redo stream is complete from ``vdl`` on."""
        self._pending.clear()
        self._ready.clear()
        for pg, lsn in tails.items():
            if lsn > self.durable_tails.get(pg, 0):
                self.durable_tails[pg] = lsn
        if vdl != self._vdl:
            # We missed records (or the writer changed): drop the cache, reload on demand --
            # the catalog and sequence tables at once: the engine's catalog is built from them
            # (engine.database keeps the previous one until they are back).
            self.tables = {}
            self._placement_gen += 1
            self._placement_stale = True
            self._vdl = vdl
            self.writer_vdl = vdl
            log.info("reader_cache_reset", vdl=vdl)
            self._tasks.append(asyncio.ensure_future(self._reload_catalog()))

    async def _reload_catalog(self) -> None:
        from engine.catalog import CATALOG_TABLE, SEQUENCE_TABLE

        try:
            while True:  # the engine keeps the previous catalog until this succeeds
                try:
                    await self.ensure_loaded([CATALOG_TABLE, SEQUENCE_TABLE])
                    return
                except StorageUnavailable as e:
                    log.warning("catalog_reload_failed", error=str(e))
                    await asyncio.sleep(0.5)
        finally:
            task = asyncio.current_task()
            if task in self._tasks:
                self._tasks.remove(task)  # type: ignore[arg-type]

    def receive(self, records: list[LogRecord], vdl: int, sent_at: float) -> None:
        pending = self._pending
        for r in records:
            if r.kind == COMMIT:
                recs = pending.pop(r.txid, [])
                self._ready.append((r.lsn, recs))
            else:
                pending.setdefault(r.txid, []).append(r)
        if vdl > self.writer_vdl:
            self.writer_vdl = vdl
        self._apply_upto(self.writer_vdl)
        if sent_at:
            self.lag_ms = max(0.0, (time.time() - sent_at) * 1000.0)

    def _apply_upto(self, vdl: int) -> None:
        ready = self._ready
        i = 0
        tables = self.tables
        decode = self.codec.decode_row
        horizon = self.horizon()
        self.collect(horizon)
        while i < len(ready) and ready[i][0] <= vdl:
            commit_lsn, recs = ready[i]
            dtails = self.durable_tails
            dtails[CONTROL_PG] = commit_lsn
            for r in recs:
                dtails[r.pg] = r.lsn
                if r.kind == PUTS:
                    _apply_puts(tables, r, commit_lsn, decode, horizon)
                    continue
                tid = _TID.unpack_from(r.key)[0]
                if r.kind == DELETE_PREFIX:  # DROP TABLE: forget its rows once no snapshot needs them
                    self.note_dropped(commit_lsn, (tid,))
                    continue
                t = tables.get(tid)
                if t is None:
                    if tid == PLACEMENT_TABLE:
                        self.placement.apply_entry(r.key[4:], r.value)
                    continue  # not cached here: storage has it
                t.add(r.key[4:], commit_lsn, None if r.kind == DELETE else decode(r.value), horizon)
            i += 1
        if i:
            del ready[:i]
        if vdl > self._vdl:
            self._vdl = vdl

    def status(self) -> dict[str, Any]:
        return {"vcl": self.writer_vdl, "vdl": self.writer_vdl, "epoch": self.epoch, "applied_lsn": self._vdl,
                "pgs": self.placement.count}
