"""Serializable snapshot isolation: read/write dependencies among SERIALIZABLE transactions.

REPEATABLE READ already gives each transaction one snapshot and fails a write to a row
changed since (first updater wins).  What it allows is write skew: two transactions each
read what the other then writes.  SERIALIZABLE adds this tracker on the writer.

A *rw-dependency* ``R -> W`` is recorded when R read data that W writes and R's snapshot
does not show W's write (the two overlap in time).  Reads are remembered per row key
(point lookups) or per table (scans and index searches -- a table read conflicts with
every write to that table, which also covers rows inserted later: phantoms).  Writes are
remembered as they are buffered, so a dependency on a transaction still running is seen.

Every non-serializable execution contains a *pivot* P with ``Tin -> P -> Tout`` where
Tout commits first.  On each new dependency and at each commit the tracker looks for
such a pivot and fails one transaction with 40001: the one asking, or marks the pivot
*doomed* so its next statement or COMMIT fails.  A read-only Tin is only dangerous when
its snapshot already shows Tout's commit.  As in PostgreSQL the test is conservative
(a pivot may be failed although no cycle closes) and only SERIALIZABLE transactions
take part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import errors

Key = bytes
_MSG = "could not serialize access due to read/write dependencies among transactions"
_HINT = "The transaction might succeed if retried."


@dataclass
class SxAct:
    txid: int
    snapshot: int
    read_only: bool
    keys: set[tuple[int, Key]] = field(default_factory=set)  # rows read by key
    tables: set[int] = field(default_factory=set)  # tables read as a whole
    writes: set[tuple[int, Key]] = field(default_factory=set)
    write_tables: set[int] = field(default_factory=set)
    ins: set[int] = field(default_factory=set)  # X -> me: X did not see my writes
    outs: set[int] = field(default_factory=set)  # me -> X: I did not see X's writes
    commit_lsn: int | None = None
    prepared: bool = False  # passed its commit check: can no longer be doomed
    doomed: str | None = None  # why it must fail at its next statement / COMMIT


def _fail(reason: str) -> errors.SerializationFailure:
    return errors.SerializationFailure(_MSG, detail=f"Reason code: {reason}.", hint=_HINT)


class SsiTracker:
    def __init__(self) -> None:
        self.xacts: dict[int, SxAct] = {}

    # -- life cycle ----------------------------------------------------------------------------
    def begin(self, txid: int, snapshot: int, read_only: bool) -> None:
        if txid not in self.xacts:
            self.xacts[txid] = SxAct(txid, snapshot, read_only)

    def check(self, txid: int) -> None:
        """40001 if the transaction was doomed as a pivot by another one."""
        x = self.xacts.get(txid)
        if x is not None and x.doomed:
            raise _fail(x.doomed)

    def precommit(self, txid: int) -> None:
        """Before the commit record is written: fail if doomed; as the first committer
        (Tout) of ``X -> me``, doom a pivot X that has an inbound dependency too."""
        me = self.xacts.get(txid)
        if me is None:
            return
        self.check(txid)
        for xid in list(me.ins):
            x = self.xacts.get(xid)
            if x is None or x.commit_lsn is not None or x.doomed:
                continue
            for tin_id in x.ins:
                tin = self.xacts.get(tin_id)
                if tin is None:
                    continue
                if tin is me or (tin.commit_lsn is None and not tin.read_only):
                    if x.prepared:
                        raise _fail("Canceled on identification as a pivot, during commit attempt")
                    x.doomed = "Canceled on identification as a pivot, during commit attempt"
                    break
        me.prepared = True

    def committed(self, txid: int, lsn: int) -> None:
        x = self.xacts.get(txid)
        if x is not None:
            x.commit_lsn = lsn
            x.prepared = True
        self._prune()

    def abort(self, txid: int) -> None:
        x = self.xacts.pop(txid, None)
        if x is None:
            return
        for other in x.ins | x.outs:
            o = self.xacts.get(other)
            if o is not None:
                o.ins.discard(txid)
                o.outs.discard(txid)
        self._prune()

    def _prune(self) -> None:
        """Forget committed transactions no running serializable transaction overlaps."""
        running = [x.snapshot for x in self.xacts.values() if x.commit_lsn is None]
        oldest = min(running) if running else None
        for txid in [t for t, x in self.xacts.items()
                     if x.commit_lsn is not None and (oldest is None or x.commit_lsn <= oldest)]:
            self.abort(txid)

    # -- reads and writes ------------------------------------------------------------------------
    def read_key(self, txid: int, table_id: int, key: Key) -> None:
        r = self.xacts.get(txid)
        if r is None or (table_id, key) in r.keys:
            return
        r.keys.add((table_id, key))
        for w in list(self.xacts.values()):
            if w is not r and (table_id, key) in w.writes and self._overlap(r, w):
                self._edge(r, w, current=r)

    def read_table(self, txid: int, table_id: int) -> None:
        r = self.xacts.get(txid)
        if r is None or table_id in r.tables:
            return
        r.tables.add(table_id)
        for w in list(self.xacts.values()):
            if w is not r and table_id in w.write_tables and self._overlap(r, w):
                self._edge(r, w, current=r)

    def write(self, txid: int, table_id: int, key: Key) -> None:
        w = self.xacts.get(txid)
        if w is None or (table_id, key) in w.writes:
            return
        w.writes.add((table_id, key))
        w.write_tables.add(table_id)
        for r in list(self.xacts.values()):
            if r is not w and (table_id in r.tables or (table_id, key) in r.keys) and self._overlap(r, w):
                self._edge(r, w, current=w)

    @staticmethod
    def _overlap(a: SxAct, b: SxAct) -> bool:
        """Neither committed before the other's snapshot was taken."""
        return ((a.commit_lsn is None or a.commit_lsn > b.snapshot)
                and (b.commit_lsn is None or b.commit_lsn > a.snapshot))

    def _edge(self, r: SxAct, w: SxAct, current: SxAct) -> None:
        """Record ``r -> w`` and look for a pivot with a committed Tout."""
        if w.txid in r.outs:
            return
        r.outs.add(w.txid)
        w.ins.add(r.txid)
        # r as the pivot, w as Tout that already committed
        if w.commit_lsn is not None and r.commit_lsn is None:
            for tin_id in r.ins:
                tin = self.xacts.get(tin_id)
                if tin is not None and self._dangerous(tin, w):
                    self._doom(r, current, "Canceled on identification as a pivot, during conflict in checking")
                    return
        # w as the pivot: r -> w -> tout with tout committed first
        if w.commit_lsn is None:
            for tout_id in w.outs:
                tout = self.xacts.get(tout_id)
                if tout is not None and tout.commit_lsn is not None and self._dangerous(r, tout):
                    self._doom(w, current, "Canceled on identification as a pivot, during write")
                    return

    @staticmethod
    def _dangerous(tin: SxAct, tout: SxAct) -> bool:
        """Tout (committed) committed before Tin did; a read-only Tin only if it saw Tout."""
        assert tout.commit_lsn is not None
        if tin.commit_lsn is not None and tin.commit_lsn < tout.commit_lsn:
            return False
        return not tin.read_only or tout.commit_lsn <= tin.snapshot

    def _doom(self, pivot: SxAct, current: SxAct, reason: str) -> None:
        if pivot is current or pivot.prepared:
            if current.prepared:
                return  # both past their check (cannot happen on one event loop)
            raise _fail(reason)
        pivot.doomed = reason
