"""Retention window and garbage collection of a storage node.

Retention: every version must stay readable at any LSN inside the last
``retention_seconds`` (PITR, clones and backtrack stand on this).  A node maps time to LSN
with a small persisted history of ``(unix_time, vdl_hint)`` samples (``Mhist``), taken at
most every :func:`sample_step` seconds while the VDL hint moves.  The *window LSN* is the
VDL hint of the newest sample taken at or before ``now - retention``: the VDL was at least
that at the start of the window, so every read point inside the window is >= it.  A node
younger than its retention has no such sample: window LSN 0, nothing is collected.

GC of one PG (:func:`collect`): ``p`` = the PG's last record with lsn <= min(window LSN,
materialised point).  If it is above the PG's current floor:

1. the new floors are written first (``gc`` = p: reads at an LSN below p answer
   ``too_old``, because a record of the PG at p is newer than the read point;
   ``gcprev`` = p's ``prev_lsn``: FetchLog with after_lsn below it answers ``too_old``);
2. for each key, every version older than its newest version <= p is deleted, and that
   newest one too when it is a delete (a tombstone hides nothing any more) -- except in
   a PG the volume added as it grew, where it may hide a version in an older PG of the
   same table (``server.placement``);
3. log records with lsn < p are deleted (they are all materialised; the record at p stays
   as the base of the chain).

Before step 2, the PG's range tombstones (DELETE_PREFIX records, DROP TABLE:
``storage.records``) with lsn <= p are applied: every version of every key with the
tombstone's prefix in this PG goes, in one RocksDB ``delete_range`` written in the same
batch that forgets the tombstone (so a crash repeats it or has done it, never half).
Versions above p are deleted too: nothing ever writes a prefix again after its tombstone
(a committed table id is never allocated again), so only a dropped table's dead rows
have that prefix.  A tombstone above p waits: the retention window keeps the table's
rows readable at any point before the drop.

Floors first: a crash between the steps leaves extra data, never a read answered from a
collected past.  Versions above p and records above p are never touched, so GC runs
alongside appends and the materialiser.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import TYPE_CHECKING

import structlog

from storage import protocol as P
from storage.store import (
    Batch, CorruptData, check_record, decode_version, log_key, pg_version_range, prefix_version_range,
)

if TYPE_CHECKING:
    from storage.node import StorageNode

log = structlog.get_logger("storage.gc")

CHUNK = 5_000
MAX_SAMPLES = 512


def sample_step(retention: float) -> float:
    return max(0.2, retention / 200)


def window_lsn(history: list[tuple[float, int]], now: float, retention: float) -> int:
    """VDL hint of the newest sample at or before ``now - retention`` (0 if none)."""
    cutoff = now - retention
    i = bisect.bisect_right([t for t, _ in history], cutoff)
    return history[i - 1][1] if i else 0


def sample(node: "StorageNode") -> bool:
    """Add a (now, VDL hint) sample when due; drop samples no window needs.  Written
    unsynced (a lost sample only delays GC).  Returns True if a sample was added."""
    now = node.clock()
    hist = node.history
    if hist and (hist[-1][1] == node.vdl_hint or now - hist[-1][0] < sample_step(node.retention_seconds)):
        return False
    hist.append((now, node.vdl_hint))
    cutoff = now - node.retention_seconds
    keep_from = max(0, bisect.bisect_right([t for t, _ in hist], cutoff) - 1)
    del hist[:keep_from]
    if len(hist) > MAX_SAMPLES:  # thin out the middle, keep both ends
        del hist[1:-1:2]
    batch = Batch()
    batch.put_history(hist)
    node.store.write(batch)
    return True


async def collect(node: "StorageNode", req: int = 0) -> P.GcResult:
    sample(node)
    w = window_lsn(node.history, node.clock(), node.retention_seconds)
    v_removed = r_removed = dropped = 0
    for pg in range(node.n_pgs):
        p = node.store.last_log_lsn(pg, min(w, node.mat[pg]))
        if p <= node.gc_floor[pg]:
            continue
        raw = node.store.get_raw(log_key(pg, p))
        try:
            base = check_record(log_key(pg, p), raw or b"")
        except CorruptData:
            node._repair_wakeup.set()
            continue  # the scrubber repairs it first
        floors = Batch()
        floors.put_pg_meta(b"gc", pg, p)
        floors.put_pg_meta(b"gcprev", pg, base.prev_lsn)
        node.store.write(floors)
        node.gc_floor[pg] = p
        node.log_floor[pg] = max(node.log_floor[pg], base.prev_lsn)
        dropped += _collect_dropped(node, pg, p)
        v_removed += await _collect_versions(node, pg, p)
        r_removed += await _collect_log(node, pg, p)
    await node.flusher.sync()
    if v_removed or r_removed or dropped:
        log.info("gc_done", window_lsn=w, gc_floor=node.gc_floor, versions=v_removed, records=r_removed,
                 prefixes=dropped)
    return P.GcResult(
        req=req, window_lsn=w, gc_floor=dict(enumerate(node.gc_floor)),
        versions_removed=v_removed, records_removed=r_removed, prefixes_dropped=dropped,
    )


def _collect_dropped(node: "StorageNode", pg: int, p: int) -> int:
    """Apply the PG's range tombstones at or below ``p``; returns how many.  One
    ``delete_range`` per tombstone: constant work however many rows the table had."""
    tombstones = node.store.range_tombstones(pg, p)
    if not tombstones:
        return 0
    batch = Batch()
    for lsn, prefix in tombstones:
        if prefix:  # an empty prefix would be the whole PG: never written, never honoured
            batch.delete_range(*prefix_version_range(pg, prefix))
        batch.delete_range_tombstone(pg, lsn)
    node.store.write(batch)
    log.info("gc_dropped_prefixes", pg=pg, gc_point=p, prefixes=[pre.hex() for _, pre in tombstones])
    return len(tombstones)


async def _collect_versions(node: "StorageNode", pg: int, p: int) -> int:
    lo, hi = pg_version_range(pg)
    batch = Batch()
    removed = 0
    group: bytes | None = None  # raw key prefix (without ~lsn) of the current user key
    state = "above"  # above p | kept (newest <= p seen) | skip (damaged: keep all)
    for k, v in node.store.iter_raw(lo, hi):
        if len(k) < 15:
            continue
        head = k[:-8]
        if head != group:
            group, state = head, "above"
        if state == "skip":
            continue
        lsn = 2**64 - 1 - int.from_bytes(k[-8:], "big")
        if lsn > p:
            continue
        if state == "above":
            try:
                value = decode_version(k, v)
            except CorruptData:
                state = "skip"  # scrubber's job; keep the older versions meanwhile
                continue
            state = "kept"
            if value is not None or pg >= getattr(node, "base_pgs", node.n_pgs):
                continue  # a tombstone of an added PG hides versions in an older PG
        batch.delete_raw(k)
        removed += 1
        if batch.count >= CHUNK:
            node.store.write(batch)
            batch = Batch()
            await asyncio.sleep(0)
    node.store.write(batch)
    return removed


async def _collect_log(node: "StorageNode", pg: int, p: int) -> int:
    batch = Batch()
    removed = 0
    for k, _ in node.store.iter_raw(log_key(pg, 0), log_key(pg, p)):
        batch.delete_raw(k)
        removed += 1
        if batch.count >= CHUNK:
            node.store.write(batch)
            batch = Batch()
            await asyncio.sleep(0)
    node.store.write(batch)
    return removed


async def retention_loop(node: "StorageNode", gc_interval: float) -> None:
    """Sample the VDL hint and collect every ``gc_interval`` seconds."""
    step = sample_step(node.retention_seconds)
    since_gc = 0.0
    while True:
        await asyncio.sleep(step)
        since_gc += step
        try:
            sample(node)
            if since_gc >= gc_interval:
                since_gc = 0.0
                await collect(node)
        except asyncio.CancelledError:
            raise
        except CorruptData as e:  # a damaged block on the walk: the scrubber rebuilds
            node._note_corrupt(e)
            log.warning("gc_failed", error=str(e))
        except OSError as e:  # a full disk: the next round retries
            log.warning("gc_failed", error=str(e))
        except Exception:  # noqa: BLE001 -- GC must never take the node down
            log.exception("gc_failed")
