"""Crash recovery of the volume by a new writer: no redo replay, only consistency points.

Steps (``recover``):

1. Reach the storage nodes; wait until a write quorum (4/6) answers ``GetState``.
2. Fence: new epoch = highest epoch seen + 1, ``SetEpoch`` on a write quorum.  From here on
   no older writer can get a record acknowledged by a quorum.
3. For each PG (every PG any node holds: the volume may have grown, ``server.placement``),
   pick a read quorum (3/6) of the fenced nodes: the three with the highest SCL.  ``base``
   is the lowest SCL among them (all of them hold every record up to it).  Union the
   records they hold above it and follow the back-links from ``base``: the end of that
   chain is the highest point up to which the PG is complete (``complete[pg]``).  Any
   record that reached a write quorum is on at least one member of any read quorum, so no
   durable record is missed; picking the most complete three keeps a lagging or freshly
   replaced segment from dragging ``base`` (and the log read) down.
4. VDL: start from the highest VDL any writer told storage (``vdl_hint``: known durable),
   then walk PG 0's COMMIT records above it in LSN order.  A commit whose records are all at
   or below ``complete`` of their PGs is durable; the VDL is the last commit before the first
   one that is not.  Every acknowledged commit passes this walk.
5. Truncate (VDL, VDL + LAL] under the new epoch on a write quorum; the new writer allocates
   LSNs above VDL + LAL, so an old, unacknowledged record can never be confused with a new one.
6. Back-links for the new writer: the last record <= VDL of each PG.
7. Wait until every PG is complete up to that record on a write quorum (gossip repairs it):
   the VDL may rest on records that only one member of the read quorum held.

Only nodes that took the new epoch serve steps 3-6 (their log is durable from then on), and
records inside a truncation range some node already holds (from an earlier recovery that
did not finish) are ignored: gossip deletes them everywhere.

During a storage membership change (``storage.membership``: seven nodes, the old six and the
new six) every quorum above is needed in *both* sets, as for the writer's commits: the
epoch and the truncation must reach 4/6 of each set, the read quorum of each PG is three
of each set, and step 7 waits for 4/6 of each set.

Work is bounded by the records above the oldest SCL / VDL hint, not by the log's size.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from storage import protocol as P
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.records import COMMIT, CONTROL_PG, LSN_ALLOCATION_LIMIT, LogRecord, decode_commit_value

WRITE_QUORUM = 4
READ_QUORUM = 3

log = structlog.get_logger("recovery")


@dataclass
class RecoveredVolume:
    epoch: int
    vdl: int
    next_lsn: int
    tails: dict[int, int]  # pg -> last record LSN <= VDL (back-link for the next record)
    scl: dict[str, dict[int, int]]  # node -> pg -> SCL after truncation (from its state)
    pgs: int = 0  # PGs the volume has (the most any node holds)
    pg_bytes: dict[int, int] = field(default_factory=dict)  # pg -> bytes of log (largest segment)
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds


def quorum_sets(names: list[str], transition: dict | None) -> list[set[str]]:
    """The sets a quorum must be reached in: normally all nodes; while node ``old`` is
    being replaced by ``new`` (both listed), the old six and the new six."""
    everyone = set(names)
    t = transition or {}
    old, new = t.get("old"), t.get("new")
    if old in everyone and new in everyone:
        return [everyone - {new}, everyone - {old}]
    return [everyone]


def _quorate(names: set[str], sets: list[set[str]], quorum: int) -> bool:
    return all(len(names & s) >= min(quorum, len(s)) for s in sets)


async def _states(nodes: list[NodeClient]) -> dict[str, P.NodeState]:
    async def one(n: NodeClient):
        try:
            return n.name, await n.state(timeout=1.5)
        except (NodeUnavailable, NodeError, OSError):
            n.close()
            return n.name, None

    results = await asyncio.gather(*(one(n) for n in nodes))
    return {name: st for name, st in results if st is not None}


async def _fetch_all(node: NodeClient, pg: int, after: int) -> list[LogRecord]:
    """The node's records of ``pg`` above ``after`` (crc not checked yet: see pg_union)."""
    out: list[LogRecord] = []
    while True:
        batch = await node.fetch_log(pg, after, limit=5000)
        out.extend(batch.records)
        if len(batch.records) < 5000 or not batch.records:
            return out
        after = batch.records[-1].lsn


def _cut(rec: LogRecord, truncs: set[tuple[int, int, int]]) -> bool:
    """True if a truncation range of a newer epoch removed this record."""
    return any(a < rec.lsn <= u and rec.epoch < e for e, a, u in truncs)


def _trusted(st: P.NodeState, pg: int, truncs: set[tuple[int, int, int]]) -> bool:
    """The node's SCL of ``pg`` is a chain point that survives every known truncation:
    the node applied the truncation, or its SCL is at or below the truncation's start.
    (Some node reported each truncation and applied it.)"""
    scl = st.scl.get(pg, 0)
    known = {tuple(t) for t in st.truncations}
    return all(t in known or scl <= t[1] for t in truncs)


def _read_quorum(states: dict[str, P.NodeState], pg: int, truncs: set[tuple[int, int, int]],
                 sets: list[set[str]]) -> tuple[list[str], int]:
    """(members, base) for ``pg``: in each quorum set the READ_QUORUM nodes with the highest
    trusted SCL (all of them if fewer are trusted), and the lowest SCL among the members
    (every member holds every record up to it)."""
    members: set[str] = set()
    for s in sets:
        inside = [n for n in states if n in s]
        trusted = [n for n in inside if _trusted(states[n], pg, truncs)]
        pool = trusted if len(trusted) >= READ_QUORUM else inside
        pool.sort(key=lambda n: states[n].scl.get(pg, 0), reverse=True)
        members.update(pool[:READ_QUORUM] if len(trusted) >= READ_QUORUM else pool)
    chosen = sorted(members)
    trusted_scl = [states[n].scl.get(pg, 0) for n in chosen if _trusted(states[n], pg, truncs)]
    base = min(trusted_scl) if trusted_scl else min(states[n].scl.get(pg, 0) for n in chosen)
    return chosen, base


async def recover(nodes: list[NodeClient], pgs: int, *, wait_timeout: float | None = None,
                  quorum_sets: list[set[str]] | None = None) -> RecoveredVolume:
    by_name = {n.name: n for n in nodes}
    sets = quorum_sets or [set(by_name)]
    loop = asyncio.get_running_loop()
    deadline = None if wait_timeout is None else loop.time() + wait_timeout
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1 + 2: reach a write quorum (of every quorum set), fence with a new epoch.
    while True:
        states = await _states(nodes)
        if _quorate(set(states), sets, WRITE_QUORUM):
            epoch = max(s.epoch for s in states.values()) + 1
            fenced: set[str] = set()

            async def fence(name: str) -> None:
                try:
                    await by_name[name].set_epoch(epoch)
                    fenced.add(name)
                except (NodeUnavailable, NodeError):
                    pass

            await asyncio.gather(*(fence(name) for name in states))
            if _quorate(fenced, sets, WRITE_QUORUM):
                break
        if deadline is not None and loop.time() > deadline:
            raise TimeoutError("no write quorum of storage nodes reachable")
        log.info("recovery_waiting_for_quorum", reachable=sorted(states), quorum_sets=[sorted(s) for s in sets])
        await asyncio.sleep(0.5)
    timings["fence"] = time.perf_counter() - t0

    # Only fenced nodes count: SetEpoch's fsync made everything they held durable, so no
    # record we build the VDL on can vanish in a crash, and they take no older appends.
    states = {n: st for n, st in (await _states(nodes)).items() if n in fenced and st.epoch == epoch}
    if not _quorate(set(states), sets, READ_QUORUM):
        raise TimeoutError("lost the read quorum during recovery")
    pgs = max([pgs] + [len(st.scl) for st in states.values()])
    vdl_hint = max(s.vdl_hint for s in states.values())
    # Truncations an earlier (possibly failed) recovery recorded on some nodes: the records
    # they cut are gone for good (gossip deletes them everywhere), so they must not count
    # here, and a node that has not applied one yet may report an SCL that runs through
    # cut records.
    truncs = {tuple(t) for st in states.values() for t in st.truncations}
    quorums = {pg: _read_quorum(states, pg, truncs, sets) for pg in range(pgs)}

    # 3: complete point of every PG from the union of a read quorum's records.
    async def pg_union(pg: int) -> tuple[int, dict[int, LogRecord]]:
        names, base = quorums[pg]
        lo = min(base, vdl_hint) if pg == CONTROL_PG else base

        async def one(name: str) -> list[LogRecord] | None:
            try:
                return await _fetch_all(by_name[name], pg, lo)
            except (NodeUnavailable, NodeError):
                return None

        got = await asyncio.gather(*(one(n) for n in names))
        if any(recs is None for recs in got):
            # A member could not answer (gone, or its segment found damaged): the union
            # must still meet every write quorum, so ask every other fenced node too.
            others = [n for n in states if n not in names]
            got += await asyncio.gather(*(one(n) for n in others))
        union: dict[int, LogRecord] = {}
        for recs in got:
            if recs is None:
                continue
            for r in recs:
                # The read quorum's copies overlap: check each LSN's crc once.
                if r.lsn not in union and not _cut(r, truncs) and r.valid():
                    union[r.lsn] = r
        by_prev = {r.prev_lsn: r for r in union.values()}
        cur = base
        while cur in by_prev:
            cur = by_prev[cur].lsn
        return cur, union

    t1 = time.perf_counter()
    results = await asyncio.gather(*(pg_union(pg) for pg in range(pgs)))
    complete = {pg: results[pg][0] for pg in range(pgs)}
    unions = {pg: results[pg][1] for pg in range(pgs)}
    timings["read_quorum"] = time.perf_counter() - t1

    # 4: the VDL.
    vdl = vdl_hint
    for lsn in sorted(unions[CONTROL_PG]):
        if lsn <= vdl:
            continue
        if lsn > complete[CONTROL_PG]:
            break
        rec = unions[CONTROL_PG][lsn]
        if rec.kind != COMMIT:
            continue
        touched = decode_commit_value(rec.value)
        if all(complete.get(pg, 0) >= top for pg, top in touched.items()):
            vdl = lsn
        else:
            break

    # 5: back-links (before truncating: the record after the VDL may be needed).
    tails: dict[int, int] = {}
    for pg in range(pgs):
        below = [lsn for lsn in unions[pg] if lsn <= vdl]
        names, base = quorums[pg]
        if below:
            tails[pg] = max(below)
        elif base <= vdl:
            tails[pg] = base
        else:
            # The chain around the VDL lies below what we fetched: the first record above
            # the VDL names its predecessor.
            tails[pg] = 0
            for name in names:
                try:
                    batch = await by_name[name].fetch_log(pg, vdl, limit=1)
                except (NodeUnavailable, NodeError):
                    continue
                if batch.records:
                    tails[pg] = batch.records[0].prev_lsn
                    break
    # 6: truncate everything above the VDL that an older writer may have allocated.
    t2 = time.perf_counter()
    upto = vdl + LSN_ALLOCATION_LIMIT
    acked: set[str] = set()

    async def cut(name: str) -> None:
        try:
            await by_name[name].truncate(epoch, vdl, upto)
            acked.add(name)
        except (NodeUnavailable, NodeError):
            pass

    await asyncio.gather(*(cut(name) for name in states))
    if not _quorate(acked, sets, WRITE_QUORUM):
        raise TimeoutError("could not record the truncation on a write quorum")
    timings["truncate"] = time.perf_counter() - t2

    # 7: the records up to the VDL may sit on fewer than a write quorum (a read quorum
    # member had them): wait until gossip has them on 4/6, so that no new record is ever
    # chained onto records a later crash could take away.
    t3 = time.perf_counter()
    while True:
        after = await _states(nodes)
        if all(_quorate({n for n, st in after.items() if st.scl.get(pg, 0) >= tails[pg]}, sets, WRITE_QUORUM)
               for pg in range(pgs)):
            break
        if deadline is not None and loop.time() > deadline:
            raise TimeoutError("records below the recovered VDL did not reach a write quorum")
        log.info("recovery_waiting_for_repair", tails=tails)
        await asyncio.sleep(0.3)
    timings["repair_wait"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    scl = {name: dict(st.scl) for name, st in after.items()}
    pg_bytes: dict[int, int] = {}
    for st in after.values():
        for pg, n in st.pg_bytes.items():
            pg_bytes[pg] = max(pg_bytes.get(pg, 0), n)
    log.info("recovered", epoch=epoch, vdl=vdl, complete=complete, tails=tails, vdl_hint=vdl_hint, pgs=pgs,
             ms={k: round(v * 1000, 1) for k, v in timings.items()})
    return RecoveredVolume(epoch=epoch, vdl=vdl, next_lsn=upto + 1, tails=tails, scl=scl, pgs=pgs,
                           pg_bytes=pg_bytes, timings=timings)
