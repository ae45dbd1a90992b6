"""The scrubber: verify every stored log record and version of a node, repair damage.

A pass (:func:`scrub`) walks the node's RocksDB in key order:

* ``L`` entries (log records) must decode and pass ``LogRecord.valid`` under the key they
  are stored at.  A damaged record at (pg, lsn) is replaced by the same record fetched from
  a peer (``FetchLog(pg, after_lsn=lsn-1, limit=1)``).  If no peer has it, it is deleted
  and the PG's SCL is rebuilt below it: the node then answers ``not_complete`` for reads
  above, and gossip brings the record back later.  The materialised point of the PG goes
  back below the record so its version is re-materialised.
* ``V`` entries (versions) must pass their crc (``storage.store.decode_version``).  A
  damaged version at (pg, key, lsn) is rebuilt from the local log record at ``lsn`` when
  it is held and valid; otherwise the gap between its two healthy neighbours is copied from
  a peer that has materialised at least as far (``CopyVersions``) and the damaged entry is
  dropped.

If RocksDB itself refuses to read (its block checksums failed), or failed a write (a
compaction met a bad block), the walk cannot go on: the node *rebuilds* -- the damaged
database is moved aside (``db.corrupt-<time>``), an empty one is opened with the epoch,
truncations, VDL hint and retention history kept, and gossip copies every segment back
from the peers (FetchLog, or ``CopyVersions`` bulk copy below a peer's GC floor).

Every segment a pass finds damage in is marked ``damaged`` (``StorageNode.mark_damaged``:
not served, SCL reported as 0); once repaired or rebuilt it is ``repairing`` -- reads still
refused -- until its SCL is back where it was when the damage was found.  A segment left
damaged (no peer could give an entry back) is scrubbed again every ``DAMAGED_RETRY`` s.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from storage import protocol as P
from storage.client import NodeError, NodeUnavailable
from storage.records import DELETE_PREFIX, record_versions
from storage.segment import Verdict
from storage.store import (
    Batch,
    CorruptData,
    Store,
    check_record,
    decode_version,
    log_key,
    parse_version_key,
    pg_log_range,
    pg_version_range,
    version_key,
)

if TYPE_CHECKING:
    from storage.node import StorageNode

log = structlog.get_logger("storage.scrub")

YIELD_EVERY = 2_000
# A scheduled pass is background work: it uses at most this share of the node's time, so
# six nodes scrubbing a large volume on shared cores do not stall commits (a pass of a few
# million entries takes a few times longer instead) -- and a much smaller share while the
# node is taking writes (a WAL flush since the last slice): foreground work first, as
# Aurora's storage nodes pace their background tasks to the foreground load.  A pass
# asked for (Scrub request, or a read that met damage) runs flat out.
SCRUB_DUTY = 0.2
SCRUB_DUTY_BUSY = 0.02

PEER_TIMEOUT = 3.0
DAMAGED_RETRY = 2.0  # s between scrub passes while a segment stays damaged
_PEER_ERRORS = (NodeUnavailable, NodeError, OSError, asyncio.TimeoutError)


class _Pace:
    """Between chunks of the walk: yield to the loop, and when pacing, sleep long enough
    that the walk's own time stays at ``SCRUB_DUTY`` of the elapsed time (``SCRUB_DUTY_BUSY``
    when the node flushed writes since the previous chunk)."""

    def __init__(self, paced: bool, flushes: Callable[[], int] = lambda: 0) -> None:
        self.paced = paced
        self.flushes = flushes
        self.seen = flushes()
        self.resumed = time.monotonic()

    async def pause(self) -> None:
        if not self.paced:
            await asyncio.sleep(0)
            return
        busy = time.monotonic() - self.resumed
        now = self.flushes()
        duty = SCRUB_DUTY_BUSY if now != self.seen else SCRUB_DUTY
        self.seen = now  # flushes during the sleep count for the next chunk
        await asyncio.sleep(busy * (1 / duty - 1))
        self.resumed = time.monotonic()


class _Pass:
    def __init__(self) -> None:
        self.records = 0
        self.versions = 0
        self.bad_log: list[tuple[int, int, bytes]] = []  # (pg, lsn, raw key)
        self.bad_versions: list[tuple[int, bytes, bytes, bytes]] = []  # (pg, raw key, gap begin, gap end)
        self.lost: list[tuple[int, int]] = []  # (pg, lsn above which the chain to the SCL breaks)


async def _walk(node: "StorageNode", paced: bool = False) -> _Pass:
    st = _Pass()
    store = node.store
    pace = _Pace(paced, lambda: node.flusher.flushes)
    n = 0
    for pg in range(node.n_pgs):
        lo, hi = pg_log_range(pg)
        # The chain: records up to the SCL must link back to the GC floor (or 0) without a
        # gap -- a record that vanished (RocksDB lost it silently) is damage too.
        scl, floor = node.seg.pgs[pg].scl, node.gc_floor[pg]
        expect_prev = None if floor else 0
        chain_ok = True
        for k, v in store.iter_raw(lo, hi):
            st.records += 1
            try:
                rec = check_record(k, v)
            except CorruptData:
                st.bad_log.append((pg, int.from_bytes(k[5:13], "big") if len(k) == 13 else 0, k))
                chain_ok = False  # repaired (or rebuilt) separately
            else:
                if chain_ok and floor < rec.lsn <= scl:
                    if expect_prev is not None and rec.prev_lsn != expect_prev:
                        st.lost.append((pg, min(rec.lsn, max(expect_prev, floor) + 1)))
                        chain_ok = False
                    expect_prev = rec.lsn
                elif rec.lsn == floor:
                    expect_prev = rec.lsn
            n += 1
            if n % YIELD_EVERY == 0:
                await pace.pause()
        if chain_ok and scl > floor and (expect_prev or 0) < scl:
            st.lost.append((pg, max(expect_prev or 0, floor) + 1))
        lo, hi = pg_version_range(pg)
        prev_good = lo
        pending: list[bytes] = []  # damaged keys waiting for their next healthy neighbour
        for k, v in store.iter_raw(lo, hi):
            st.versions += 1
            try:
                if len(k) < 15:
                    raise CorruptData("version key too short", k)
                decode_version(k, v)
            except CorruptData:
                pending.append(k)
            else:
                for bad in pending:
                    st.bad_versions.append((pg, bad, prev_good + b"\x00", k))
                pending = []
                prev_good = k
            n += 1
            if n % YIELD_EVERY == 0:
                await pace.pause()
        for bad in pending:
            st.bad_versions.append((pg, bad, prev_good + b"\x00", hi))
    return st


async def _fetch_record(node: "StorageNode", pg: int, lsn: int) -> Any:
    for peer in node.peers:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):  # not wait_for: see gossip._peer_state
                batch = await peer.call(P.FetchLog, timeout=PEER_TIMEOUT, pg=pg, after_lsn=lsn - 1, limit=1)
        except _PEER_ERRORS:
            continue
        for rec in batch.records:
            if rec.lsn == lsn and rec.pg == pg and rec.valid():
                return rec
    return None


async def _repair_log(node: "StorageNode", pg: int, lsn: int, raw_key: bytes) -> bool:
    rec = await _fetch_record(node, pg, lsn) if lsn else None
    batch = Batch()
    if rec is not None:
        batch.put_log(rec)
        if rec.lsn <= node.mat[pg]:
            for key, value in record_versions(rec):
                batch.put_version(pg, key, rec.lsn, value)
            if rec.kind == DELETE_PREFIX:
                batch.put_range_tombstone(pg, rec.lsn, rec.key)
        node.store.write(batch)
        if node.seg.admit(rec) is Verdict.NEW:  # skipped as damaged when the SCL was built
            node.seg.add(rec)
        return True
    # Nobody could give it back now: make it a hole that gossip fills later.
    batch.delete_raw(raw_key)
    node.store.write(batch)
    if lsn:
        rebuild_pg_below(node, pg, lsn)
    return False


def rebuild_pg_below(node: "StorageNode", pg: int, lsn: int) -> None:
    """Recompute the PG's SCL from a complete point below ``lsn`` and move its
    materialised point back there (versions above are re-derived, idempotently)."""
    st = node.seg.pgs[pg]
    base = max(node.gc_floor[pg], node.store.last_log_lsn(pg, min(lsn - 1, st.scl)))
    node.seg.rebuild_pg(pg, base, node.store.iter_log(pg, base, on_corrupt=lambda e: None))
    node.durable_scl[pg] = min(node.durable_scl[pg], node.seg.pgs[pg].scl)
    batch = Batch()
    node.checkpoint_scl(batch)
    if node.mat[pg] > base:
        node.mat[pg] = base
        batch.put_materialized(pg, base)
    node.store.write(batch)
    log.warning("scl_rebuilt_below_damage", pg=pg, lsn=lsn, scl=node.seg.pgs[pg].scl)


async def _repair_version(node: "StorageNode", pg: int, raw_key: bytes, begin: bytes, end: bytes) -> bool:
    store = node.store
    lsn = 0
    if len(raw_key) >= 15:
        _, _, lsn = parse_version_key(raw_key)
        raw = store.get_raw(log_key(pg, lsn)) if 0 < lsn < 2**63 else None
        if raw is not None:
            try:
                rec = check_record(log_key(pg, lsn), raw)
            except CorruptData:
                rec = None
            pairs = record_versions(rec) if rec is not None else []
            if pairs:
                batch = Batch()
                mine = [(k, v) for k, v in pairs if version_key(pg, k, lsn) == raw_key]
                if not mine:  # the damage hit the key itself: rewrite every version of the record
                    batch.delete_raw(raw_key)
                    mine = pairs
                for key, value in mine:
                    batch.put_version(pg, key, lsn, value)
                store.write(batch)
                return True
    # Below the log's GC floor: copy the gap between the healthy neighbours from a peer
    # that has materialised at least as far as we have.
    for peer in node.peers:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):  # not wait_for: see gossip._peer_state
                pst = await peer.state(timeout=PEER_TIMEOUT)
            if pst.materialized < min(node.mat[pg], max(lsn, 1)):
                continue
            async with asyncio.timeout(PEER_TIMEOUT):
                got = await peer.call(P.CopyVersions, timeout=PEER_TIMEOUT, pg=pg, begin=begin, end=end, limit=10_000)
        except _PEER_ERRORS:
            continue
        batch = Batch()
        keys = set()
        for k, v in got.entries:
            try:
                decode_version(k, v)
            except CorruptData:
                continue
            if begin <= k < end:
                batch.put_raw(k, v)
                keys.add(k)
        if raw_key not in keys:
            batch.delete_raw(raw_key)
        store.write(batch)
        return True
    return False


async def rebuild(node: "StorageNode") -> None:
    """Replace an unreadable database by an empty one; gossip refills it from peers.
    Every segment is ``repairing`` until its SCL is back where it was."""
    try:
        await node.flusher.drain()
    except Exception:  # noqa: BLE001 -- a failed fsync of a broken store: it is being replaced
        pass
    node.mark_damaged(range(node.n_pgs))
    old = node.store
    path = old.path
    # What the node holds in memory is authoritative (the damaged store may not even
    # answer point reads any more).
    keep = (node.seg.epoch, list(node.seg.truncations), node.vdl_hint, list(node.history))
    old.close_damaged()
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time() * 1000)}")
    os.replace(path, aside)
    store = Store(path)
    batch = Batch()
    batch.put_meta_int(b"epoch", max(keep[0], node.seg.epoch))
    batch.put_truncations(list(node.seg.truncations) or keep[1])
    batch.put_meta_int(b"vdl", keep[2])
    batch.put_meta_int(b"pgs", node.n_pgs)  # the PGs the volume grew to stay held
    batch.put_history(keep[3])
    store.write(batch)
    store.flush_wal()
    node.open_state(store)
    node.rebuild_needed = False
    node.mark_repairing(range(node.n_pgs))
    log.error("store_rebuilt_from_peers", moved_aside=str(aside))


async def scrub(node: "StorageNode", req: int = 0, paced: bool = False) -> P.ScrubResult:
    """One verification pass plus repair; the reply counts what it found and fixed.
    ``paced``: a scheduled pass (see ``SCRUB_DUTY``)."""
    try:
        if node.rebuild_needed:
            raise CorruptData("RocksDB failed on this node (a damaged block, or a compaction or write that met one)")
        st = await _walk(node, paced)
    except CorruptData as e:
        log.error("rocksdb_corruption", error=str(e))
        st = None
    if st is None:
        # Out of the except block: its traceback held the walk's RocksDB iterator, which
        # keeps the database (and its lock) open.
        gc.collect()
        await rebuild(node)
        node.corrupt_seen = 0
        return P.ScrubResult(req=req, records=0, versions=0, corrupt=1, repaired=0, rebuilt=True)
    found = {pg for pg, _, _ in st.bad_log} | {pg for pg, _, _, _ in st.bad_versions} | {pg for pg, _ in st.lost}
    node.mark_damaged(found)
    repaired = 0
    unrepaired: set[int] = set()
    for pg, lsn, k in st.bad_log:
        repaired += await _repair_log(node, pg, lsn, k)  # a record nobody had becomes a hole
    for pg, k, begin, end in st.bad_versions:
        if await _repair_version(node, pg, k, begin, end):
            repaired += 1
        else:
            unrepaired.add(pg)
    for pg, lsn in st.lost:
        # Records below the SCL are missing: go back below them; gossip refetches them.
        rebuild_pg_below(node, pg, lsn)
    # Damage reads met but this pass no longer finds (repaired meanwhile) counts as repaired
    # too; a version no peer could give back keeps its segment damaged until a later pass.
    node.mark_repairing(pg for pg in list(node.damaged) if pg not in unrepaired)
    corrupt = len(st.bad_log) + len(st.bad_versions) + len(st.lost)
    if corrupt:
        await node.flusher.sync()
        node._mat_wakeup.set()
        log.warning("scrub_repaired", corrupt=corrupt, repaired=repaired, records=st.records, versions=st.versions)
    node.corrupt_seen = 0
    return P.ScrubResult(req=req, records=st.records, versions=st.versions, corrupt=corrupt, repaired=repaired)


async def learn_targets(node: "StorageNode") -> None:
    """Segments rebuilt without knowing what they held (the store could not be read at
    all): whole again once at the 4th highest SCL the peers report -- at least as far as
    the PG's write quorum reached while this node was missing."""
    unknown = [pg for pg, (_st, target) in node.damaged.items() if target < 0]
    if not unknown:
        return
    scls: list[dict[int, int]] = []
    for peer in node.peers:
        try:
            async with asyncio.timeout(PEER_TIMEOUT):
                scls.append(dict((await peer.state(timeout=PEER_TIMEOUT)).scl))
        except _PEER_ERRORS:
            continue
    if not scls or len(scls) < min(3, len(node.peers)):
        return  # not enough peers to tell; try again later
    for pg in unknown:
        values = sorted((s.get(pg, 0) for s in scls), reverse=True)
        node.damaged[pg][1] = values[min(3, len(values) - 1)]
    node._save_damage()
    node.check_repaired()


async def scrub_loop(node: "StorageNode", interval: float) -> None:
    """A paced pass every ``interval`` seconds (each wait drawn from 0.5x..1.5x of it, so
    the six nodes, started together, do not all scrub at once), and a full-speed pass at
    once when a read met damage -- again every ``DAMAGED_RETRY`` s while a segment stays
    damaged (a peer that could give back a lost entry was down)."""
    while True:
        paced = True
        wait = interval * random.uniform(0.5, 1.5)
        retry = any(st == "damaged" for st, _t in node.damaged.values())
        if retry or any(t < 0 for _st, t in node.damaged.values()):
            wait = min(wait, DAMAGED_RETRY)
        try:
            await asyncio.wait_for(node._repair_wakeup.wait(), wait)
            await asyncio.sleep(0.05)  # let a burst of damaged reads coalesce
            paced = False
        except asyncio.TimeoutError:
            if retry:
                paced = False
        node._repair_wakeup.clear()
        try:
            await learn_targets(node)
            if paced and not retry and wait <= DAMAGED_RETRY:
                continue  # only waiting for repairing segments to refill: no pass needed
            await scrub(node, paced=paced)
        except asyncio.CancelledError:
            raise
        except OSError as e:  # a full disk: the repair waits for space
            log.warning("scrub_failed", error=str(e))
        except Exception:  # noqa: BLE001 -- the scrubber must never take the node down
            log.exception("scrub_failed")
