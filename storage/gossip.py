"""Segment repair by gossip: fill holes and catch up from peer storage nodes.

Every ``GOSSIP_INTERVAL`` seconds the node asks each peer for its ``NodeState`` (peers that
do not answer within ``PEER_TIMEOUT`` are skipped this round) and then:

1. adopts every truncation range a peer knows and it does not (before taking any record,
   so that records a recovery cut off cannot come back through a peer that kept them),
   and the range's epoch if it is higher than its own;
2. for each PG, if some peer has a higher SCL or a higher max LSN, pulls
   ``FetchLog(pg, after_lsn=cursor)`` from the best such peer (highest SCL), starting at its
   own SCL and paging forward, and applies the records durably like an Append.
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
        return await asyncio.wait_for(peer.state(timeout=PEER_TIMEOUT), PEER_TIMEOUT)
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
        for pg in range(node.n_pgs):
            best: tuple[NodeClient, P.NodeState] | None = None
            for peer, st in live:
                if self._behind(pg, st) and (best is None or st.scl.get(pg, 0) > best[1].scl.get(pg, 0)):
                    best = (peer, st)
            if best is not None:
                await _catch_up(node, pg, best[0])
        self.previous = {st.name: st for _, st in live}


async def _catch_up(node: "StorageNode", pg: int, peer: NodeClient) -> None:
    cursor = node.seg.pgs[pg].scl
    before = cursor
    for _ in range(MAX_PAGES_PER_ROUND):
        try:
            batch = await peer.call(P.FetchLog, timeout=PEER_TIMEOUT * 3, pg=pg, after_lsn=cursor, limit=FETCH_LIMIT)
        except (NodeUnavailable, NodeError, OSError):
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
        except Exception:  # noqa: BLE001 -- gossip must never take the node down
            log.exception("gossip_round_failed")
