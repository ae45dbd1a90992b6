"""Segment repair by gossip: fill holes and catch up from peer storage nodes.

Every ``GOSSIP_INTERVAL`` seconds the node asks each peer for its ``NodeState`` (peers that
do not answer within ``PEER_TIMEOUT`` are skipped this round) and then:

1. adopts every truncation range a peer knows and it does not (before taking any record,
   so that records a recovery cut off cannot come back through a peer that kept them),
   and the range's epoch if it is higher than its own;
2. for each PG, if some peer has a higher SCL or a higher max LSN, pulls
   ``FetchLog(pg, after_lsn=cursor)`` from the best such peer (highest SCL), starting at its
   own SCL and paging forward, and applies the records durably like an Append;
3. if that peer answers ``too_old`` (it garbage-collected the log we need: we were away
   for longer than its retention, or we are a fresh replacement node), *bootstraps* the PG
   from it (:func:`bootstrap_pg`): its versions up to its GC floor ``f`` are copied raw
   (``CopyVersions``, each entry's crc checked), the PG's own versions and log below ``f``
   are dropped, and the PG restarts at SCL = materialised point = GC floor = ``f``; the
   next FetchLog goes on from ``f``.

A peer that holds more PGs than the node (the volume grew while it was down) makes it
add them first.  It also adopts the highest VDL hint of its peers (a node that missed Appends, or a fresh
one, still materialises), when the node supports it (``note_peer_vdl``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from storage import protocol as P
from storage.client import NodeClient, NodeError, NodeUnavailable

if TYPE_CHECKING:
    from storage.node import StorageNode

log = structlog.get_logger("storage.gossip")

GOSSIP_INTERVAL = 0.3
PEER_TIMEOUT = 1.0
FETCH_LIMIT = 2_000
MAX_PAGES_PER_ROUND = 50


async def _peer_state(peer: NodeClient) -> P.NodeState | None:
    try:
        # asyncio.timeout, not wait_for: wait_for runs the call in a task of its own, and
        # one cancelled (node shutdown) just as it failed logs "Task exception was never
        # retrieved".  (asyncio.timeout needs a task: this runs in gather's.)
        async with asyncio.timeout(PEER_TIMEOUT):
            return await peer.state(timeout=PEER_TIMEOUT)
    except (NodeUnavailable, NodeError, asyncio.TimeoutError, OSError):
        peer.close()
        return None


class Gossip:
    """Gossip state across rounds: the peers' states seen in the previous round.

    A peer ahead of us right now is usually only ahead by Appends still in flight to us;
    we pull from it when we are still behind what it had a round ago (a real hole or a
    missed stretch), or on the first round after start.
    """

    def __init__(self, node: "StorageNode", peers: list[NodeClient]) -> None:
        self.node = node
        self.peers = peers
        self.previous: dict[str, P.NodeState] = {}

    def _behind(self, pg: int, st: P.NodeState) -> bool:
        mine = self.node.seg.pgs[pg]
        prev = self.previous.get(st.name)
        ref = prev if prev is not None else st
        return (
            min(st.scl.get(pg, 0), ref.scl.get(pg, 0)) > mine.scl
            or min(st.max_lsn.get(pg, 0), ref.max_lsn.get(pg, 0)) > mine.max_lsn
        )

    async def round(self) -> None:
        node = self.node
        states = await asyncio.gather(*(_peer_state(p) for p in self.peers))
        live = [(p, s) for p, s in zip(self.peers, states) if s is not None]
        adopted = False
        for peer, st in live:
            for t in st.truncations:
                if not node.seg.has_truncation(tuple(t)):
                    # The range was cut by a writer of epoch t[0]: fence older writers too.
                    node.adopt_epoch(t[0])
                    node.apply_truncation(tuple(t))
                    log.info("truncation_adopted", peer=peer.name, truncation=tuple(t))
                    adopted = True
        if adopted:
            await node.flusher.sync()
        wanted = max((len(st.scl) for _, st in live), default=0)
        if wanted > node.n_pgs:
            await node.adopt_pgs(wanted)  # the volume added PGs while we were away
        note_vdl = getattr(node, "note_peer_vdl", None)
        if note_vdl is not None and live:
            note_vdl(max(st.vdl_hint for _, st in live))
        for pg in range(node.n_pgs):
            best: tuple[NodeClient, P.NodeState] | None = None
            for peer, st in live:
                if self._behind(pg, st) and (best is None or st.scl.get(pg, 0) > best[1].scl.get(pg, 0)):
                    best = (peer, st)
            if best is not None:
                await _catch_up(node, pg, best[0], best[1])
        self.previous = {st.name: st for _, st in live}


async def _catch_up(node: "StorageNode", pg: int, peer: NodeClient, st: P.NodeState | None = None) -> None:
    cursor = node.seg.pgs[pg].scl
    before = cursor
    for _ in range(MAX_PAGES_PER_ROUND):
        try:
            batch = await peer.call(P.FetchLog, timeout=PEER_TIMEOUT * 3, pg=pg, after_lsn=cursor, limit=FETCH_LIMIT)
        except NodeError as e:
            if e.code == "too_old" and hasattr(node, "gc_floor") and st is not None:
                if not await bootstrap_pg(node, pg, peer, st):
                    return
                cursor = node.seg.pgs[pg].scl
                continue
            return
        except (NodeUnavailable, OSError):
            return
        if not batch.records:
            break
        await node.apply_fetched(batch.records)
        cursor = max(node.seg.pgs[pg].scl, batch.records[-1].lsn)
        if len(batch.records) < FETCH_LIMIT:
            break
    if node.seg.pgs[pg].scl != before:
        log.debug("caught_up", pg=pg, peer=peer.name, scl_from=before, scl_to=node.seg.pgs[pg].scl)


async def gossip_loop(node: "StorageNode", peers: list[NodeClient]) -> None:
    gossip = Gossip(node, peers)
    while True:
        await asyncio.sleep(GOSSIP_INTERVAL)
        try:
            await gossip.round()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 -- gossip must never take the node down
            if getattr(e, "code", None) in ("no_space", "corrupt", "io_error"):  # storage.node.Refused
                log.warning("gossip_round_failed", error=str(e))  # the node's own store refused the write
            else:
                log.exception("gossip_round_failed")


async def bootstrap_pg(node: "StorageNode", pg: int, peer: NodeClient, st: P.NodeState) -> bool:
    """Copy the PG's versions up to the peer's GC floor from ``peer`` (see the module
    docstring).  Returns False if the peer could not serve the copy."""
    from storage.store import Batch, CorruptData, decode_version, log_key, pg_version_range

    floor = st.gc_floor.get(pg, 0)
    if floor <= node.seg.pgs[pg].scl:
        return False
    lo, hi = pg_version_range(pg)
    begin = lo
    copied = 0
    wipe = Batch()
    wipe.delete_range(lo, hi)
    wipe.delete_range(log_key(pg, 0), log_key(pg, floor + 1))
    node.store.write(wipe)
    while True:
        try:
            got = await peer.call(P.CopyVersions, timeout=PEER_TIMEOUT * 5, pg=pg, begin=begin, end=hi, limit=FETCH_LIMIT)
        except (NodeUnavailable, NodeError, OSError):
            return False
        batch = Batch()
        for k, v in got.entries:
            try:
                decode_version(k, v)
            except CorruptData:
                return False
            if lo <= k < hi and 2**64 - 1 - int.from_bytes(k[-8:], "big") <= floor:
                batch.put_raw(k, v)
                copied += 1
        node.store.write(batch)
        if not got.more or not got.entries:
            break
        begin = got.entries[-1][0] + b"\x00"
        await asyncio.sleep(0)
    meta = Batch()
    meta.put_pg_meta(b"gc", pg, floor)
    meta.put_pg_meta(b"gcprev", pg, floor)
    meta.put_materialized(pg, floor)
    node.gc_floor[pg] = floor
    node.log_floor[pg] = floor
    node.mat[pg] = floor
    node.store.write(meta)
    node.seg.rebuild_pg(pg, floor, node.store.iter_log(pg, floor, on_corrupt=lambda e: None))
    node.note_peer_vdl(st.vdl_hint)
    await node.flusher.sync()
    log.info("pg_bootstrapped", pg=pg, peer=peer.name, gc_floor=floor, versions=copied, scl=node.seg.pgs[pg].scl)
    return True
