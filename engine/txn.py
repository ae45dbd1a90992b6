"""A transaction's write buffer, its locks and the read-your-own-writes overlay.

``Txn.tables[table_id][key] -> row | None`` (None = delete) holds every uncommitted
write; nothing reaches the store before ``commit``.  Reads go through ``get``/``scan``,
which overlay these writes on the store's snapshot.  A per-statement undo log lets a
statement be rolled back and restarted after a lock wait or write conflict.

Lock keys are (table_id, row key); unique-constraint values are locked as
``(table_id, b"\\xffu" + constraint name + b"\\x00" + encoded values)`` -- row keys never
start with 0xFF (see ``engine.keys``), so the two cannot collide.
"""

from __future__ import annotations

import datetime as _dt
import time as _time
from typing import Any, Iterable, Iterator

from engine.api import TABLE_DROPPED, Key, Row, WriteSet
from engine.gcpause import gc_paused

_MISSING = object()
_BULK = 10_000  # a write set this big is built with the cyclic GC paused (engine.gcpause)
_SEQUENCES = 1  # engine.catalog.SEQUENCE_TABLE: it and the catalog (0) are not tracked by SSI


class Restart(Exception):
    """The statement must be rolled back and re-run (after waiting for ``holder``)."""

    def __init__(self, holder: int | None) -> None:
        super().__init__(f"restart (holder {holder})")
        self.holder = holder


class Txn:
    def __init__(self, store: Any, isolation: str, read_only: bool, explicit: bool) -> None:
        self.store = store
        self.isolation = isolation  # "read committed" | "repeatable read" | "serializable"
        self.read_only = read_only
        self.explicit = explicit
        self.txid: int | None = None
        self.tables: dict[int, dict[Key, Row | None]] = {}
        self.undo: dict[tuple[int, Key], Any] = {}
        self.snapshot: int | None = None  # fixed snapshot (RR / SERIALIZABLE)
        self.failed = False
        self.catalog: Any = None  # txn-local catalog after DDL
        self.seqs: set[int] = set()  # sequences advanced (written at commit)
        self._t0 = _time.time()  # transaction start; ``start_time`` builds the datetime on demand
        self._start: _dt.datetime | None = None
        self.savepoints: list[tuple[str, Any]] = []  # (name, saved state), see EngineSession
        self.guc_undo: dict[str, str | None] = {}  # GUC -> value before this transaction set it
        self.guc_local: set[str] = set()  # GUCs set with SET LOCAL (reverted at commit too)
        self.ssi: Any = None  # engine.ssi.SsiTracker while SERIALIZABLE on the writer
        # engine.indexes.OwnIndex per (table id, column positions): this transaction's own
        # writes by indexed values, kept current by put / put_many / rollback_statement
        self.own_ix: dict[tuple[int, tuple[int, ...]], Any] = {}

    @property
    def start_time(self) -> _dt.datetime:
        """now() / transaction_timestamp(): the moment the transaction began (most
        transactions never ask, so the datetime is made only when one does)."""
        st = self._start
        if st is None:
            st = self._start = _dt.datetime.fromtimestamp(self._t0, _dt.timezone.utc)
        return st

    @property
    def nothing_to_commit(self) -> bool:
        """Read only, no row lock, no pin, no SET LOCAL: ending it needs no commit."""
        return self.txid is None and self.ssi is None and not self.tables and not self.seqs and not self.guc_undo

    @property
    def snapshot_per_txn(self) -> bool:
        return self.isolation != "read committed"

    @property
    def has_writes(self) -> bool:
        return any(self.tables.values()) or bool(self.seqs)

    # -- reads ---------------------------------------------------------------------------
    def get(self, tid: int, key: Key, snap: int) -> Row | None:
        if self.ssi is not None and tid > _SEQUENCES:
            self.ssi.read_key(self.txid, tid, key)
        w = self.tables.get(tid)
        if w is not None:
            row = w.get(key, _MISSING)
            if row is not _MISSING:
                return row  # type: ignore[return-value]
        return self.store.get(tid, key, snap)

    def scan(self, tid: int, snap: int) -> Iterator[tuple[Key, Row]]:
        self.note_predicate(tid)
        w = self.tables.get(tid)
        if not w:
            yield from self.store.scan(tid, snap)
            return
        w = dict(w)
        for key, row in self.store.scan(tid, snap):
            mine = w.pop(key, _MISSING)
            if mine is _MISSING:
                yield key, row
            elif mine is not None:
                yield key, mine  # type: ignore[misc]
        for key, row in w.items():
            if row is not None:
                yield key, row

    def note_predicate(self, tid: int) -> None:
        """A read that depends on which rows exist (scan, index search): SERIALIZABLE
        remembers it for the whole table."""
        if self.ssi is not None and tid > _SEQUENCES:
            self.ssi.read_table(self.txid, tid)

    # -- writes --------------------------------------------------------------------------
    def lock(self, tid: int, key: Key, shared: bool = False) -> None:
        """Take the row lock (raises ``LockBusy`` from the store); ``shared``: FOR SHARE."""
        if self.txid is None:
            self.txid = self.store.new_txid()
        if shared:
            self.store.lock(self.txid, tid, key, shared=True)
        else:
            self.store.lock(self.txid, tid, key)

    def lock_many(self, tid: int, keys: Iterable[Key]) -> None:
        """Exclusive locks on many rows of one table (a table rewrite)."""
        if self.txid is None:
            self.txid = self.store.new_txid()
        self.store.lock_many(self.txid, tid, keys)

    def lock_table(self, tid: int) -> None:
        """Exclusive lock on the whole table (DROP TABLE; raises ``LockBusy``)."""
        if self.txid is None:
            self.txid = self.store.new_txid()
        self.store.lock_table(self.txid, tid)

    def lock_for_update(self, tid: int, key: Key, snap: int) -> None:
        """Lock a row read at ``snap``; a newer committed version is a write conflict."""
        self.lock(tid, key)
        if self.store.latest_lsn(tid, key) > snap:
            raise Restart(None)

    def put(self, tid: int, key: Key, row: Row | None) -> None:
        if self.ssi is not None and tid > _SEQUENCES:
            self.ssi.write(self.txid, tid, key)
        w = self.tables.get(tid)
        if w is None:
            w = self.tables[tid] = {}
        k = (tid, key)
        if k not in self.undo:
            self.undo[k] = w.get(key, _MISSING)
        w[key] = row
        if self.own_ix and row is not None:
            self.index_own(tid, w, ((key, row),))

    def put_many(self, tid: int, items: Iterable[tuple[Key, Row | None]]) -> None:
        """``put`` of many rows of one table, in order (a table rewrite)."""
        ssi = self.ssi if tid > _SEQUENCES else None
        w = self.tables.get(tid)
        if w is None:
            w = self.tables[tid] = {}
        undo = self.undo
        get = w.get
        if self.own_ix:
            items = list(items)
            self.index_own(tid, w, items)
        for key, row in items:
            if ssi is not None:
                ssi.write(self.txid, tid, key)
            k = (tid, key)
            if k not in undo:
                undo[k] = get(key, _MISSING)
            w[key] = row

    # -- statement boundaries ------------------------------------------------------------------
    def begin_statement(self) -> None:
        self.undo = {}

    def rollback_statement(self) -> None:
        for (tid, key), prev in self.undo.items():
            w = self.tables[tid]
            if prev is _MISSING:
                w.pop(key, None)
            else:
                w[key] = prev
                if self.own_ix and prev is not None:  # its values may have been indexed after it was overwritten
                    self.index_own(tid, w, ((key, prev),))
        self.undo = {}

    def drop_own_indexes(self, tid: int) -> None:
        """Forget the own-write indexes of ``tid`` (its buffer is about to be written
        directly); the next lookup rebuilds them."""
        for k in [k for k in self.own_ix if k[0] == tid]:
            del self.own_ix[k]

    def index_own(self, tid: int, w: dict, items: Iterable[tuple[Key, Row | None]]) -> None:
        """Add written rows to the own-write indexes of ``tid`` built over ``w``."""
        ixs = [ix for (t, _), ix in self.own_ix.items() if t == tid and ix.w is w]
        if ixs:
            for key, row in items:
                if row is not None:
                    for ix in ixs:
                        ix.add(key, row)

    def write_set(self) -> dict[tuple[int, Key], Row | None]:
        """Every write; with a table dropped (``engine.api.TABLE_DROPPED``) a ``WriteSet``
        naming it, without its own writes (the whole table is dead as of the commit)."""
        tables = self.tables
        dropped = tuple(tid for tid, w in tables.items() if TABLE_DROPPED in w)
        if not dropped:
            if sum(len(w) for w in tables.values()) < _BULK:
                return {(tid, key): row for tid, w in tables.items() for key, row in w.items()}
            with gc_paused():  # a million new key tuples must not each trigger collections
                return {(tid, key): row for tid, w in tables.items() for key, row in w.items()}
        out = WriteSet(dropped=dropped)
        with gc_paused():
            for tid, w in tables.items():
                if tid not in dropped:
                    out.update({(tid, key): row for key, row in w.items()})
        return out
