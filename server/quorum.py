"""Consistency points on the writer, computed from storage acknowledgements.  Pure: no I/O.

The writer hands every allocated record to ``track`` (in LSN order) and every ack to
``ack(node, scl_by_pg)``.  From the acks it keeps, per protection group, the SCL of each
segment; ``PGCL[pg]`` is the 4th highest of them (all records of the PG up to it are on a
write quorum of 4/6).  ``VCL`` is the highest LSN below which every tracked record is
covered by its PG's PGCL; ``VDL`` the highest commit LSN (CPL) <= VCL.

    allocated:  101(pg1) 102(pg0) 103(pg0, COMMIT) 104(pg1) 105(pg0, COMMIT)
    PGCL:       pg0 = 105, pg1 = 101
    -> VCL = 103 (104 is not on a quorum yet), VDL = 103
"""

from __future__ import annotations

from collections import deque

WRITE_QUORUM = 4


class ConsistencyTracker:
    def __init__(self, nodes: list[str], pgs: int, *, start_vdl: int = 0, write_quorum: int = WRITE_QUORUM) -> None:
        self.nodes = list(nodes)
        self.pgs = pgs
        self.write_quorum = write_quorum
        self.scl: dict[str, dict[int, int]] = {n: {p: 0 for p in range(pgs)} for n in nodes}
        self.pgcl: dict[int, int] = {p: 0 for p in range(pgs)}
        self._outstanding: deque[tuple[int, int]] = deque()  # (lsn, pg) not yet on a quorum
        self._commits: deque[int] = deque()  # commit LSNs not yet <= VCL
        self.vcl = start_vdl
        self.vdl = start_vdl
        self.last_allocated = start_vdl
        # Quorum sets: a record is on a write quorum when each set holds it on 4 of its 6.
        # Normally one set (the six segments); during a membership change (Aurora's
        # ABCDEF -> ABCDEG) two: the old six and the new six.
        self.quorum_sets: list[set[str]] = [set(nodes)]

    def set_quorum_sets(self, sets: list[set[str]]) -> None:
        self.quorum_sets = [set(s) for s in sets]
        for members in self.quorum_sets:
            for n in members:
                self.scl.setdefault(n, {p: 0 for p in range(self.pgs)})

    def add_pgs(self, count: int) -> None:
        """The volume grew to ``count`` PGs (server.placement)."""
        if count <= self.pgs:
            return
        for pg in range(self.pgs, count):
            self.pgcl.setdefault(pg, 0)
            for known in self.scl.values():
                known.setdefault(pg, 0)
        self.pgs = count

    def track(self, lsn: int, pg: int, is_commit: bool) -> None:
        assert lsn > self.last_allocated, "LSNs must be tracked in increasing order"
        self.last_allocated = lsn
        self._outstanding.append((lsn, pg))
        if is_commit:
            self._commits.append(lsn)

    def ack(self, node: str, scl: dict[int, int]) -> bool:
        """Record a segment's SCLs; returns True if the VDL advanced."""
        known = self.scl.setdefault(node, {p: 0 for p in range(self.pgs)})
        changed = False
        for pg, lsn in scl.items():
            prev = known.get(pg, 0)
            if lsn > prev:
                known[pg] = lsn
                changed = True
            elif lsn < prev:
                known[pg] = lsn  # the segment lost records (repair, rebuild): count what it has
        if not changed:
            return False
        q = self.write_quorum
        for pg in scl:
            complete = None
            for members in self.quorum_sets:
                values = sorted((self.scl[n].get(pg, 0) for n in members if n in self.scl), reverse=True)
                point = values[q - 1] if len(values) >= q else 0
                complete = point if complete is None else min(complete, point)
            if complete:
                self.pgcl[pg] = max(self.pgcl.get(pg, 0), complete)
        return self._advance()

    def _advance(self) -> bool:
        out = self._outstanding
        pgcl = self.pgcl
        while out and pgcl.get(out[0][1], 0) >= out[0][0]:
            out.popleft()
        self.vcl = (out[0][0] - 1) if out else self.last_allocated
        old = self.vdl
        commits = self._commits
        while commits and commits[0] <= self.vcl:
            self.vdl = commits.popleft()
        return self.vdl != old

    def segments_complete_at(self, pg: int, lsn: int) -> list[str]:
        """Segments known (from acks) to hold every record of ``pg`` up to ``lsn``."""
        return [n for n, s in self.scl.items() if s.get(pg, 0) >= lsn]

    def forget_node(self, node: str) -> None:
        """A segment restarted (its SCL may have gone back); re-learn it from its next ack."""
        if node in self.scl:
            self.scl[node] = {p: 0 for p in range(self.pgs)}
