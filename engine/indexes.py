"""Secondary indexes: in-memory hash maps derived from a table's row versions.

Nothing is logged: an index is built on first use from every version the instance holds
(``TableVersions.rows``) and kept current by the ``TableVersions.on_add`` hook, which sees
every committed version (local commits and redo alike).  It maps the indexed column values
to the set of row keys that ever had them -- a superset, never pruned -- so a lookup
re-reads each candidate through the transaction at the statement snapshot and the caller
re-checks the predicate.  The transaction's own uncommitted writes are not in the store:
lookups also look them up in the transaction's ``OwnIndex`` of that table and columns (a
scan of the write buffer per lookup made a statement writing n rows cost n^2).

Layout: ``store.__dict__["_borealis_indexes"][table_id] -> _TableIndexes`` holding the
``TableVersions`` object it was built from (a reload/truncate makes a new one: rebuilt)
and ``maps[(column positions)] -> {value tuple: set(row keys)}``.  NULL-containing tuples
are not indexed (equality never matches NULL).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from engine.executor import Op

Fn = Callable[[Any, Any], Any]


class _TableIndexes:
    __slots__ = ("tv", "maps", "pad")

    def __init__(self, tv: Any, pad: Any) -> None:
        self.tv = tv
        self.maps: dict[tuple[int, ...], dict[tuple, set]] = {}
        self.pad = pad
        prev = tv.on_add

        def on_add(key: bytes, row: tuple) -> None:
            if prev is not None:
                prev(key, row)
            if self.pad is not None:
                row = self.pad(row)
            stale = None
            for cols, m in self.maps.items():
                try:
                    vals = tuple(row[i] for i in cols)
                except IndexError:  # built for another table that had this id (a rolled-back
                    stale = (stale or []) + [cols]  # CREATE TABLE): drop it, rebuilt on use
                    continue
                if None not in vals:
                    s = m.get(vals)
                    if s is None:
                        m[vals] = {key}
                    else:
                        s.add(key)
            if stale:
                for cols in stale:
                    self.maps.pop(cols, None)

        tv.on_add = on_add

    def get_map(self, cols: tuple[int, ...]) -> dict[tuple, set]:
        m = self.maps.get(cols)
        if m is None:
            m = {}
            pad = self.pad
            tv = self.tv
            for key in list(tv.rows):
                for _, row in tv.versions(key):
                    if row is None:
                        continue
                    if pad is not None:
                        row = pad(row)
                    vals = tuple(row[i] for i in cols)
                    if None not in vals:
                        m.setdefault(vals, set()).add(key)
            self.maps[cols] = m
        return m


class OwnIndex:
    """A transaction's own writes to one table by the values of ``cols``: a superset of the
    keys whose buffered row has those values (callers re-read and re-check), so that a
    statement writing n rows does n lookups, not n scans of its growing write buffer.
    Built from the buffer ``w`` on first use, then fed by ``Txn.put`` / ``put_many`` /
    ``rollback_statement`` (``Txn.index_own``); a different buffer object (ROLLBACK TO
    SAVEPOINT) means a rebuild.  Rows stored before an ADD COLUMN may lack an indexed
    column (filled by ``pad`` on read): those are kept aside and always checked."""

    __slots__ = ("w", "cols", "need", "map", "short")

    def __init__(self, w: dict, cols: tuple[int, ...]) -> None:
        self.w, self.cols, self.need = w, cols, max(cols) + 1
        self.map: dict[tuple, set] = {}
        self.short: set = set()
        for key, row in list(w.items()):
            if row is not None:
                self.add(key, row)

    def add(self, key: bytes, row: tuple) -> None:
        if len(row) < self.need:
            self.short.add(key)
            return
        vals = tuple(row[i] for i in self.cols)
        s = self.map.get(vals)
        if s is None:
            self.map[vals] = {key}
        else:
            s.add(key)

    def keys(self, vals: tuple) -> list:
        found = self.map.get(vals)
        if not self.short:
            return list(found) if found else []
        return list(found or ()) + [k for k in self.short if not found or k not in found]


def _table_indexes(store: Any, table_id: int, pad: Any) -> _TableIndexes | None:
    tables = getattr(store, "tables", None)
    if tables is None:
        return None
    tv = tables.get(table_id)
    if tv is None or not hasattr(tv, "on_add"):
        return None
    reg = store.__dict__.setdefault("_borealis_indexes", {})
    ti = reg.get(table_id)
    if ti is None or ti.tv is not tv:
        ti = reg[table_id] = _TableIndexes(tv, pad)
    ti.pad = pad
    return ti


def candidates(ctx: Any, table_id: int, cols: tuple[int, ...], vals: tuple, pad: Any) -> Iterator[tuple[bytes, tuple]]:
    """(key, row) pairs visible to the transaction whose ``cols`` may equal ``vals``
    (callers re-check); None when the store keeps no versions in memory."""
    ti = _table_indexes(ctx.store, table_id, pad)
    txn = ctx.txn
    snap = ctx.snapshot
    txn.note_predicate(table_id)  # SERIALIZABLE: an index search reads a predicate
    own = txn.tables.get(table_id)
    seen: set = set()
    if ti is not None:
        for key in list(ti.get_map(cols).get(vals, ())):
            row = txn.get(table_id, key, snap)
            if row is not None:
                seen.add(key)
                yield key, (row if pad is None else pad(row))
    else:  # no in-memory versions: scan
        for key, row in txn.scan(table_id, snap):
            row = row if pad is None else pad(row)
            if tuple(row[i] for i in cols) == vals:
                seen.add(key)
                yield key, row
        return
    if own:
        ix = txn.own_ix.get((table_id, cols))
        if ix is None or ix.w is not own:
            ix = txn.own_ix[(table_id, cols)] = OwnIndex(own, cols)
        for key in ix.keys(vals):
            row = own.get(key)
            if row is not None and key not in seen:
                row = row if pad is None else pad(row)
                if tuple(row[i] for i in cols) == vals:
                    yield key, row


class IndexLookup(Op):
    """Equality on the columns of a secondary index (or UNIQUE constraint)."""

    def __init__(self, table_id: int, cols: tuple[int, ...], val_fns: list[Fn], pad: Any, name: str) -> None:
        self.table_id, self.cols, self.val_fns, self.pad, self.name = table_id, cols, val_fns, pad, name

    def pairs(self, ctx: Any) -> Iterator[tuple[bytes, tuple]]:
        vals = tuple(f(None, ctx) for f in self.val_fns)
        if None in vals:
            return iter(())
        return candidates(ctx, self.table_id, self.cols, vals, self.pad)

    def rows(self, ctx: Any) -> Iterator[tuple]:
        for _, row in self.pairs(ctx):
            yield row
