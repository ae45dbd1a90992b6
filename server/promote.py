"""In-place promotion: a reader becomes the writer without restarting, keeping its cache.

The cluster manager (server.manager) sends ``Promote`` to the chosen reader's admin port once
the old writer is gone (killed, or stopped for a planned switchover).  The reader then:

1. stops following the redo stream (``RedoSubscriber.stop``) and its storage polling; from
   here on nothing changes its cache but this procedure;
2. runs the writer's storage recovery (``server.recovery``): a new epoch on a write quorum
   -- which fences the old writer --, the VDL ``R``, truncation above it;
3. brings its cache to exactly ``R``.  The reader applied whole transactions up to its
   applied VDL ``A`` (``A <= R``: the writer only ever told it durable VDLs).  The commits in
   ``(A, R]`` are the COMMIT records on PG 0's back-link chain from its tail at ``R`` down to
   ``A`` (read from a segment complete there).  Each one is applied from the redo the reader
   had buffered, or, when the reader never received it whole, from its records read back
   from storage (same back-link walk in every PG it touched).  Buffered records above ``R``
   are thrown away (truncated).  A table still loading is dropped, and when anything does
   not add up (a buffered commit storage does not have, a log storage no longer holds), every
   table is dropped: the cache reloads on demand, correctness first;
4. turns its ``ReaderVolume`` into a ``WriterVolume`` holding those tables
   (``WriterVolume.from_reader``), ends the sessions it had as a reader (FATAL 57P01, as
   Aurora drops connections on failover: a client reconnects and, through the writer
   endpoint, gets a writer session), switches the engine (``Database.promote``), the admin
   port (serves ``Subscribe``, reports role writer) and cluster cache management (publishes
   the hot set) to the writer side.

Only then does it answer ``Promoted(ok=True)``; the manager updates cluster.json, and the
endpoints and the other readers follow.  If anything fails, it answers ``ok=False`` and the
manager falls back to restarting the process as writer (a promotion that already raised the
epoch is simply superseded by the restart's recovery).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import structlog

from engine.catalog import CATALOG_TABLE, SEQUENCE_TABLE
from engine.errors import AdminShutdown
from server import replication as R
from server.recovery import RecoveredVolume
from server.volume import ReaderVolume, WriterVolume, recover_volume, tables_written
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.records import COMMIT, CONTROL_PG, LogRecord, decode_commit_value

if TYPE_CHECKING:
    from server.instance import Instance

log = structlog.get_logger("promote")

FETCH_LIMIT = 5000
MAX_READ_BACK = 200_000  # records read back from storage; beyond that the cache is dropped


class ReadBackError(Exception):
    """The commits above the reader's applied point could not be read back from storage."""


async def _chain(nodes: list[NodeClient], rec: RecoveredVolume, pg: int, above: int) -> list[LogRecord]:
    """The records of ``pg`` in (above, R], R = the recovered VDL, oldest first: the back-link
    chain from the PG's tail at R down to ``above``, from one segment complete to that tail."""
    tail = rec.tails.get(pg, 0)
    if tail <= above:
        return []
    good = [n for n in nodes if rec.scl.get(n.name, {}).get(pg, 0) >= tail]
    errors = []
    for node in good + [n for n in nodes if n not in good]:
        try:
            by_lsn: dict[int, LogRecord] = {}
            after = above
            total = 0
            while True:
                batch = await node.fetch_log(pg, after, limit=FETCH_LIMIT)
                for r in batch.records:
                    if r.lsn <= tail:
                        by_lsn[r.lsn] = r
                total += len(batch.records)
                if total > MAX_READ_BACK:
                    raise ReadBackError(f"more than {MAX_READ_BACK} records above the applied point")
                if len(batch.records) < FETCH_LIMIT or not batch.records or batch.records[-1].lsn >= tail:
                    break
                after = batch.records[-1].lsn
            out = []
            cur = tail
            while cur > above:
                r = by_lsn.get(cur)
                if r is None or not r.valid():
                    raise ReadBackError(f"{node.name} lacks LSN {cur} of PG {pg}")
                out.append(r)
                cur = r.prev_lsn
            out.reverse()
            return out
        except (NodeUnavailable, NodeError, ReadBackError) as e:
            errors.append(f"{node.name}: {e}")
    raise ReadBackError(f"PG {pg} in ({above}, {tail}]: " + "; ".join(errors))


async def commits_to_apply(reader: ReaderVolume, rec: RecoveredVolume
                           ) -> tuple[list[tuple[int, list[LogRecord]]], set[int], int, int]:
    """What ``settle_at`` needs besides the buffer: (commits read back from storage,
    tables to drop, commits found in the buffer, commits read back).  Raises ReadBackError
    when storage cannot tell (the caller drops the whole cache)."""
    applied = reader.snapshot()
    commits = [r for r in await _chain(reader.nodes, rec, CONTROL_PG, applied) if r.kind == COMMIT]
    buffered = reader.buffered_commits()
    on_storage = {c.lsn for c in commits}
    stray = [lsn for lsn in buffered if applied < lsn <= rec.vdl and lsn not in on_storage]
    if stray:
        raise ReadBackError(f"buffered commits not on storage: {stray[:5]}")
    missing = [c for c in commits if buffered.get(c.lsn) != c.txid]
    if not missing:
        return [], set(), len(commits), 0
    # Read the missing transactions back: every PG they touched, (applied, R].
    pgs = sorted({pg for c in missing for pg in decode_commit_value(c.value)})
    chains = await asyncio.gather(*(_chain(reader.nodes, rec, pg, applied) for pg in pgs))
    by_txid: dict[int, list[LogRecord]] = defaultdict(list)
    wanted = {c.txid for c in missing}
    for chain in chains:
        for r in chain:
            if r.txid in wanted and r.kind != COMMIT:
                by_txid[r.txid].append(r)
    extra = []
    drop: set[int] = set()
    for c in missing:
        recs = sorted(by_txid.get(c.txid, []), key=lambda r: r.lsn)
        top = decode_commit_value(c.value)
        for pg, hi in top.items():  # every PG the commit names must show its last record
            if pg != CONTROL_PG or hi != c.lsn:
                if not any(r.pg == pg and r.lsn == hi for r in recs):
                    raise ReadBackError(f"commit {c.lsn}: PG {pg} record {hi} not found")
        extra.append((c.lsn, recs))
        if c.lsn in buffered:  # a buffered commit with another txid: trust neither version's tables
            drop |= tables_written(recs) | reader.buffered_tables(c.lsn)
    return extra, drop, len(commits) - len(missing), len(missing)


async def promote(inst: "Instance", req: int, timeout: float) -> R.Promoted:
    """Promote ``inst`` (a reader) to writer in place; see the module docstring."""
    t0 = time.monotonic()
    steps: dict[str, float] = {}
    reader = inst.volume
    if not isinstance(reader, ReaderVolume):
        return R.Promoted(req=req, ok=False, error="not a reader")
    applied = reader.snapshot()
    log.warning("promotion_begin", instance=inst.name, applied_lsn=applied)
    # 1. Off the redo stream: the cache changes no more except through this procedure.
    inst.stop_following()
    reader.stop()
    reader.state = "recovering"
    try:
        # 2. Recovery as any new writer runs it.  The steps are bounded with asyncio.timeout,
        # not wait_for: wait_for runs the call in a task of its own, and one cancelled (the
        # instance shutting down) just as the call failed logs "Task exception was never
        # retrieved".  (asyncio.timeout needs a task: promote always runs in the one
        # AdminServer.promote made for it.)
        async with asyncio.timeout(timeout):
            rec, sets = await recover_volume(reader.nodes, reader.conf, reader.pgs)
        steps["recovery"] = round(time.monotonic() - t0, 3)
        # 3. The cache at exactly the recovered VDL.
        t1 = time.monotonic()
        try:
            async with asyncio.timeout(max(1.0, timeout - (t1 - t0))):
                extra, drop, from_buffer, from_storage = await commits_to_apply(reader, rec)
            everything = False
        except (ReadBackError, asyncio.TimeoutError) as e:
            log.warning("promotion_cache_dropped", error=str(e))
            extra, drop, from_buffer, from_storage, everything = [], set(), 0, 0, True
        if everything:
            drop = set(reader.tables)
        dropped = reader.settle_at(rec.vdl, extra, drop)
        steps["cache"] = round(time.monotonic() - t1, 3)
        # 4. The writer volume with that cache; the role switch.
        t2 = time.monotonic()
        writer = await WriterVolume.from_reader(reader, rec, sets)
        # The engine's catalog and sequences are built from these two: never serve as the
        # writer without them (they are dropped only if the reader was reloading them).
        async with asyncio.timeout(max(1.0, timeout)):
            await writer.ensure_loaded([CATALOG_TABLE, SEQUENCE_TABLE])
        closed = inst.become_writer(writer, AdminShutdown(
            "terminating connection because this instance was promoted to writer",
            hint="Reconnect: the writer endpoint now leads here."))
        steps["switch"] = round(time.monotonic() - t2, 3)
    except Exception as e:  # noqa: BLE001 -- answered to the manager, which restarts the process
        log.exception("promotion_failed")
        msg = "timed out" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__}: {e}"
        return R.Promoted(req=req, ok=False, error=msg, applied_lsn=applied)
    steps["total"] = round(time.monotonic() - t0, 3)
    cached = sorted(writer.tables)
    log.warning("promotion_done", instance=inst.name, epoch=rec.epoch, vdl=rec.vdl, applied_lsn=applied,
                from_buffer=from_buffer, from_storage=from_storage, dropped=dropped, sessions_closed=closed,
                seconds=steps)
    return R.Promoted(req=req, ok=True, epoch=rec.epoch, vdl=rec.vdl, applied_lsn=applied,
                      cached_tables=[t for t in cached if writer.tables[t].loaded_at is not None],
                      dropped_tables=dropped, from_buffer=from_buffer, from_storage=from_storage,
                      sessions_closed=closed, seconds=steps)


def terminate_sessions(backends: dict[Any, Any], err: Exception) -> int:
    """FATAL ``err`` to every open client session of this instance (server.pgwire)."""
    n = 0
    for conn in list(backends.values()):
        conn.terminate(err)
        n += 1
    return n
