"""What one storage node knows about its segments, as a pure state machine (no I/O).

A node holds one segment of every protection group (PG).  For each PG it tracks:

* ``scl``      -- segment complete LSN: the highest LSN whose chain of back-links
  (``prev_lsn``) reaches 0 with every record present.  Records of a PG are chained in LSN
  order, so the chain grows one record at a time: a record whose ``prev_lsn`` equals the
  current SCL extends it.
* ``pending``  -- records above the SCL that wait for a hole to be filled, kept as
  ``prev_lsn -> (lsn, epoch)``.  When the SCL advances we keep following this map.
* ``max_lsn``  -- highest LSN held (pending records included).

Plus, for the whole node: the volume ``epoch`` (requests from older epochs are refused)
and the truncation ranges ``(epoch, after_lsn, upto_lsn)``: a record with
``after_lsn < lsn <= upto_lsn`` and ``record.epoch < epoch`` was written by a fenced
writer above the recovered VDL, and must never come back (by gossip or a late Append).

The node feeds records through :meth:`Segment.admit` (what to do with it) and
:meth:`Segment.add` (record it); the I/O around it lives in ``storage.node``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from storage.records import LogRecord


class Verdict(enum.Enum):
    NEW = "new"  # store it
    DUPLICATE = "duplicate"  # already held: idempotent no-op
    TRUNCATED = "truncated"  # inside a truncation range from an older epoch: ignore
    BAD_CRC = "bad_crc"
    BAD_PG = "bad_pg"


Truncation = tuple[int, int, int]  # (epoch, after_lsn, upto_lsn)


@dataclass
class PgState:
    scl: int = 0
    max_lsn: int = 0
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)  # prev_lsn -> (lsn, epoch)


class Segment:
    def __init__(self, n_pgs: int, epoch: int = 0, truncations: list[Truncation] | None = None) -> None:
        self.n_pgs = n_pgs
        self.epoch = epoch
        self.truncations: list[Truncation] = list(truncations or [])
        self.pgs = [PgState() for _ in range(n_pgs)]

    def ensure_pgs(self, n: int) -> bool:
        """Grow to ``n`` PGs (the volume added protection groups); True if it grew."""
        if n <= self.n_pgs:
            return False
        self.pgs.extend(PgState() for _ in range(n - self.n_pgs))
        self.n_pgs = n
        return True

    # --- queries -------------------------------------------------------------------
    def scl(self) -> dict[int, int]:
        return {pg: s.scl for pg, s in enumerate(self.pgs)}

    def max_lsn(self) -> dict[int, int]:
        return {pg: s.max_lsn for pg, s in enumerate(self.pgs)}

    def truncated(self, lsn: int, epoch: int) -> bool:
        """True if a record (lsn, epoch) falls in a truncation range of a newer epoch."""
        return any(a < lsn <= u and epoch < e for e, a, u in self.truncations)

    def has_truncation(self, t: Truncation) -> bool:
        return tuple(t) in {tuple(x) for x in self.truncations}

    # --- transitions -----------------------------------------------------------------
    def admit(self, rec: LogRecord) -> Verdict:
        """Decide what to do with an incoming record (does not change state)."""
        if not 0 <= rec.pg < self.n_pgs:
            return Verdict.BAD_PG
        if not rec.valid():
            return Verdict.BAD_CRC
        if self.truncated(rec.lsn, rec.epoch):
            return Verdict.TRUNCATED
        st = self.pgs[rec.pg]
        if rec.lsn <= st.scl:
            return Verdict.DUPLICATE
        held = st.pending.get(rec.prev_lsn)
        if held is not None and held[0] == rec.lsn:
            return Verdict.DUPLICATE
        return Verdict.NEW

    def add(self, rec: LogRecord) -> bool:
        """Record a record admitted as NEW; returns True if the SCL of its PG advanced."""
        st = self.pgs[rec.pg]
        st.max_lsn = max(st.max_lsn, rec.lsn)
        if rec.prev_lsn == st.scl and rec.lsn > st.scl:
            st.scl = rec.lsn
            self._follow(st)
            return True
        held = st.pending.get(rec.prev_lsn)
        if held is None or held[1] <= rec.epoch:
            # Two records claiming the same predecessor can only come from different
            # writers (epochs); the newer writer's record wins.
            st.pending[rec.prev_lsn] = (rec.lsn, rec.epoch)
        return False

    def _follow(self, st: PgState) -> None:
        while (nxt := st.pending.pop(st.scl, None)) is not None:
            st.scl = nxt[0]

    def set_epoch(self, epoch: int) -> bool:
        """Adopt a higher epoch; returns True if it changed."""
        if epoch > self.epoch:
            self.epoch = epoch
            return True
        return False

    def add_truncation(self, t: Truncation) -> bool:
        """Remember a truncation range; returns True if it was new.  The node then deletes
        the range from its log and calls :meth:`rebuild_pg` for every PG."""
        t = (int(t[0]), int(t[1]), int(t[2]))
        if self.has_truncation(t):
            return False
        self.truncations.append(t)
        return True

    def rebuild_pg(self, pg: int, base: int, above: "Iterable[LogRecord]") -> None:
        """Reset a PG to SCL ``base`` (an LSN known to be complete) and replay the held
        records above it, in LSN order."""
        self.pgs[pg] = PgState(scl=base, max_lsn=base)
        for rec in above:
            if rec.lsn > base:
                self.add(rec)


def reported_scls(durable_scl: dict[int, int], damaged: dict[int, list]) -> dict[int, int]:
    """SCLs as a node tells writers and peers: a segment marked ``damaged`` (``damaged``
    maps pg -> [state, target SCL]) counts as holding nothing."""
    scl = dict(durable_scl)
    for pg, (state, _target) in damaged.items():
        if state == "damaged":
            scl[pg] = 0
    return scl


def repaired_segments(durable_scl: dict[int, int], damaged: dict[int, list]) -> list[int]:
    """The ``repairing`` segments whose SCL is back at their target (-1: not known yet)."""
    return [pg for pg, (state, target) in damaged.items()
            if state == "repairing" and 0 <= target <= durable_scl.get(pg, 0)]
