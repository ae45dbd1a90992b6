"""Versioned in-memory rows, row locks and snapshots: the core every RowStore shares.

``server.volume._Volume`` (``WriterVolume`` / ``ReaderVolume``) subclasses ``VersionedTables`` and adds loading from storage
nodes, quorum commits and the redo stream; the engine is tested through a real cluster.

Layout: ``tables[table_id] -> TableVersions``; ``TableVersions.rows[key]`` is one
``(lsn, row | None)`` version or a list of them in increasing LSN order (None = deleted).  Dict insertion order gives
scans a stable, heap-like order (first appearance of each key).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any, Iterable, Iterator

from engine.api import TABLE_DROPPED, Key, LockBusy, Row
from engine.errors import UndefinedTable
from engine.ssi import SsiTracker


class TableVersions:
    """The cached versions of one table.

    ``rows[key]`` is the key's only version as a ``(lsn, row | None)`` tuple -- the common
    case, and the cheap one: no list per row, and a tuple of plain values drops out of the
    cyclic GC's work -- or a list of such tuples in increasing LSN order when several
    versions must be kept for open snapshots.  Deletes are remembered in ``dead`` until no
    snapshot can see the deleted key's older versions, then the key is dropped
    (``collect``), so a TRUNCATE, DROP TABLE or a table rewrite frees the memory it held.
    """

    __slots__ = ("rows", "loaded_at", "live", "on_add", "dead")

    def __init__(self) -> None:
        self.rows: dict[Key, Any] = {}
        self.loaded_at: int | None = None  # snapshot the table was loaded at (None: not loaded)
        self.on_add: Any = None  # engine.indexes: called with (key, row) for every new non-deleted version
        self.dead: deque[tuple[int, Key]] = deque()  # (lsn, key) of deletes not yet collected

    def add(self, key: Key, lsn: int, row: Row | None, horizon: int = 0) -> None:
        """Add a version; versions no snapshot >= ``horizon`` can see are dropped."""
        if row is None:
            self.dead.append((lsn, key))
        elif self.on_add is not None:
            self.on_add(key, row)
        rows = self.rows
        versions = rows.get(key)
        if versions is None:
            rows[key] = (lsn, row)
            return
        if type(versions) is tuple:
            if versions[0] < lsn:
                rows[key] = [versions, (lsn, row)]
            elif versions[0] > lsn:  # out of order (loading merged with applied redo)
                rows[key] = [(lsn, row), versions]
            return
        if versions[-1][0] < lsn:
            versions.append((lsn, row))
            if horizon and len(versions) > 2 and versions[1][0] <= horizon:
                keep = 0
                for i in range(len(versions) - 1):
                    if versions[i + 1][0] <= horizon:
                        keep = i + 1
                    else:
                        break
                del versions[:keep]
                if len(versions) == 1:
                    rows[key] = versions[0]
        else:  # out of order (loading merged with applied redo): insert in place
            for i, (v_lsn, _) in enumerate(versions):
                if v_lsn == lsn:
                    return
                if v_lsn > lsn:
                    versions.insert(i, (lsn, row))
                    return
            versions.append((lsn, row))

    def versions(self, key: Key) -> list[tuple[int, Row | None]]:
        """Every cached version of ``key``, oldest first."""
        v = self.rows.get(key)
        if v is None:
            return []
        return [v] if type(v) is tuple else list(v)

    def drop_version(self, key: Key, lsn: int) -> None:
        """Remove the version ``lsn`` of ``key`` (a commit whose apply failed part way)."""
        rows = self.rows
        v = rows.get(key)
        if v is None:
            return
        if type(v) is tuple:
            if v[0] == lsn:
                del rows[key]
            return
        kept = [x for x in v if x[0] != lsn]
        if not kept:
            del rows[key]
        elif len(kept) == 1:
            rows[key] = kept[0]
        else:
            v[:] = kept

    def latest_lsn(self, key: Key) -> int:
        v = self.rows.get(key)
        if not v:
            return 0
        return v[0] if type(v) is tuple else v[-1][0]

    def get(self, key: Key, snapshot: int) -> Row | None:
        versions = self.rows.get(key)
        if not versions:
            return None
        if type(versions) is tuple:
            return versions[1] if versions[0] <= snapshot else None
        last = versions[-1]
        if last[0] <= snapshot:
            return last[1]
        for lsn, row in reversed(versions):
            if lsn <= snapshot:
                return row
        return None

    def scan(self, snapshot: int) -> Iterator[tuple[Key, Row]]:
        for key, versions in list(self.rows.items()):
            if type(versions) is tuple:
                if versions[0] <= snapshot and versions[1] is not None:
                    yield key, versions[1]
                continue
            last = versions[-1]
            if last[0] <= snapshot:
                if last[1] is not None:
                    yield key, last[1]
                continue
            for lsn, row in reversed(versions):
                if lsn <= snapshot:
                    if row is not None:
                        yield key, row
                    break

    def collect(self, horizon: int) -> int:
        """Forget deleted keys whose delete every snapshot sees (lsn <= ``horizon``), and
        the versions older than it; returns how many keys were dropped."""
        dead, rows = self.dead, self.rows
        n = 0
        while dead and dead[0][0] <= horizon:
            lsn, key = dead.popleft()
            v = rows.get(key)
            if v is None:
                continue
            if type(v) is tuple:
                if v[1] is None and v[0] <= horizon:
                    del rows[key]
                    n += 1
                continue
            keep = 0
            for i, (v_lsn, _) in enumerate(v):
                if v_lsn <= horizon:
                    keep = i
            if keep:
                del v[:keep]
            if len(v) == 1:
                if v[0][1] is None:
                    del rows[key]
                    n += 1
                else:
                    rows[key] = v[0]
        return n

    def prune(self, horizon: int) -> None:
        """Drop versions no snapshot >= horizon can see."""
        dead = []
        rows = self.rows
        for key, versions in rows.items():
            if type(versions) is tuple:
                if versions[1] is None and versions[0] <= horizon:
                    dead.append(key)
                continue
            keep_from = 0
            for i, (lsn, _) in enumerate(versions):
                if lsn <= horizon:
                    keep_from = i
            if keep_from:
                del versions[:keep_from]
            if len(versions) == 1:
                if versions[0][1] is None and versions[0][0] <= horizon:
                    dead.append(key)
                else:
                    rows[key] = versions[0]
        for key in dead:
            del rows[key]


_FREE_SLICE = 20_000  # dict entries let go of per event-loop turn (a few ms)


def free_in_slices(d: dict) -> None:
    """Empty a dict nothing else refers to any more, ``_FREE_SLICE`` entries per
    event-loop turn (at once when no loop runs)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        d.clear()
        return

    def step() -> None:
        pop = d.popitem
        for _ in range(min(_FREE_SLICE, len(d))):
            pop()
        if d:
            loop.call_soon(step)

    loop.call_soon(step)


def dropped_error(table_id: int) -> UndefinedTable:
    """What a statement planned before a DROP TABLE commit gets when it reaches the table."""
    return UndefinedTable(f"relation with OID {table_id} does not exist",
                          detail="The table was dropped by a concurrent transaction.")


class VersionedTables:
    """Versions + locks; subclasses decide how commits become durable."""

    read_only = False

    def __init__(self) -> None:
        self.tables: dict[int, TableVersions] = {}
        self._locks: dict[tuple[int, Key], int] = {}  # exclusive holder
        self._shared: dict[tuple[int, Key], set[int]] = {}  # FOR SHARE holders
        self._held: dict[int, list[tuple[int, Key]]] = {}
        self._waiters: dict[int, asyncio.Event] = {}
        # wait-for graph: waiting txid -> txid holding the lock it waits on (deadlock detection)
        self.waits: dict[int, int] = {}
        self._txids = itertools.count(1)
        self._vdl = 0
        self._pins: dict[int, int] = {}  # txid -> snapshot held across statements
        self.ssi = SsiTracker()  # SERIALIZABLE read/write dependencies
        # Whole tables (DROP TABLE): table id -> txid locking it whole, or 0 once a commit
        # this instance saw dropped it.  ``_table_locks`` counts the whole-table entries
        # (key TABLE_DROPPED) in ``_locks``; ``_forget`` holds (drop LSN, table id) of
        # dropped tables whose cached rows go once every snapshot is at or past the drop.
        self._closed: dict[int, int] = {}
        self._table_locks = 0
        self._forget: deque[tuple[int, int]] = deque()

    def pin(self, txid: int, snapshot: int) -> None:
        """Keep the versions visible at ``snapshot`` until ``release(txid)``."""
        self._pins[txid] = snapshot

    def unpin(self, txid: int) -> None:
        self._pins.pop(txid, None)

    def horizon(self) -> int:
        """Versions older than the newest one <= this LSN are invisible to every reader."""
        pins = self._pins
        return min(min(pins.values()), self._vdl) if pins else self._vdl

    # -- reads -------------------------------------------------------------------------
    def snapshot(self) -> int:
        return self._vdl

    def table(self, table_id: int) -> TableVersions:
        t = self.tables.get(table_id)
        if t is None:
            if self._closed.get(table_id) == 0:  # dropped and forgotten: never an empty table
                raise dropped_error(table_id)
            t = self.tables[table_id] = TableVersions()
        return t

    def created(self, table_id: int) -> None:
        """A table id just allocated by CREATE TABLE: storage holds nothing of it, so its
        cache is complete from the start."""
        t = self.table(table_id)
        if t.loaded_at is None:
            t.loaded_at = 0

    async def ensure_loaded(self, table_ids: Iterable[int]) -> None:
        for tid in table_ids:
            t = self.table(tid)
            if t.loaded_at is None:
                t.loaded_at = 0

    def scan(self, table_id: int, snapshot: int) -> Iterator[tuple[Key, Row]]:
        return self.table(table_id).scan(snapshot)

    def get(self, table_id: int, key: Key, snapshot: int) -> Row | None:
        return self.table(table_id).get(key, snapshot)

    def latest_lsn(self, table_id: int, key: Key) -> int:
        return self.table(table_id).latest_lsn(key)

    # -- locks -------------------------------------------------------------------------
    def new_txid(self) -> int:
        return next(self._txids)

    def lock(self, txid: int, table_id: int, key: Key, shared: bool = False) -> None:
        """Exclusive (writes, FOR UPDATE) or shared (FOR SHARE) row lock, or LockBusy."""
        if self._closed:
            self._check_open(txid, table_id)
        k = (table_id, key)
        holder = self._locks.get(k)
        if holder is not None:
            if holder != txid:
                raise LockBusy(holder)
            return
        sharers = self._shared.get(k)
        if shared:
            if sharers is None:
                sharers = self._shared[k] = set()
            if txid not in sharers:
                sharers.add(txid)
                self._held.setdefault(txid, []).append(k)
            return
        if sharers and (len(sharers) > 1 or txid not in sharers):
            raise LockBusy(min(sharers - {txid}))
        self._locks[k] = txid
        self._held.setdefault(txid, []).append(k)

    def lock_many(self, txid: int, table_id: int, keys: Iterable[Key]) -> None:
        """``lock`` (exclusive) of many rows of one table: a table rewrite locks every row."""
        if self._closed:
            self._check_open(txid, table_id)
        locks, shared = self._locks, self._shared
        held = self._held.setdefault(txid, [])
        for key in keys:
            k = (table_id, key)
            holder = locks.get(k)
            if holder is not None:
                if holder != txid:
                    raise LockBusy(holder)
                continue
            if shared:
                sharers = shared.get(k)
                if sharers and (len(sharers) > 1 or txid not in sharers):
                    raise LockBusy(min(sharers - {txid}))
            locks[k] = txid
            held.append(k)

    def _check_open(self, txid: int, table_id: int) -> None:
        """A row lock waits for a transaction locking the table whole, and fails once a
        commit dropped the table (a statement planned before the drop)."""
        holder = self._closed.get(table_id)
        if holder is None or holder == txid:
            return
        if holder == 0:
            raise dropped_error(table_id)
        raise LockBusy(holder)

    def lock_table(self, txid: int, table_id: int) -> None:
        """The whole table, exclusively (DROP TABLE): LockBusy while another transaction
        holds a lock on one of its rows, and from then on other transactions' row locks on
        it wait (PostgreSQL's ACCESS EXCLUSIVE, but plain reads do not wait: they read
        their snapshot).  O(locks held), not O(rows)."""
        self._check_open(txid, table_id)
        if self._closed.get(table_id) == txid:
            return
        for (tid, _key), holder in self._locks.items():
            if tid == table_id and holder != txid:
                raise LockBusy(holder)
        for (tid, _key), sharers in self._shared.items():
            if tid == table_id and (len(sharers) > 1 or txid not in sharers):
                raise LockBusy(min(sharers - {txid}))
        k = (table_id, TABLE_DROPPED)
        self._locks[k] = txid
        self._held.setdefault(txid, []).append(k)
        self._closed[table_id] = txid
        self._table_locks += 1

    def lock_mark(self, txid: int) -> int:
        """How many locks ``txid`` holds: a savepoint's mark for ``release_since``."""
        return len(self._held.get(txid, ()))

    async def wait_for(self, txid: int) -> None:
        if txid not in self._held:
            return
        ev = self._waiters.get(txid)
        if ev is None:
            ev = self._waiters[txid] = asyncio.Event()
        await ev.wait()

    def _drop(self, txid: int, keys: Iterable[tuple[int, Key]]) -> None:
        whole = self._table_locks
        for k in keys:
            if self._locks.get(k) == txid:
                del self._locks[k]
                if whole and k[1] is TABLE_DROPPED:
                    self._table_locks -= 1
                    if self._closed.get(k[0]) == txid:  # (0 if the commit dropped it)
                        del self._closed[k[0]]
            sharers = self._shared.get(k)
            if sharers is not None:
                sharers.discard(txid)
                if not sharers:
                    del self._shared[k]
        ev = self._waiters.pop(txid, None)
        if ev is not None:
            ev.set()  # waiters re-run their statement and wait again if still blocked

    def release_since(self, txid: int, mark: int) -> None:
        """Release the locks taken after ``lock_mark`` returned ``mark`` (ROLLBACK TO, or an
        error inside the transaction block); the transaction keeps its snapshot."""
        held = self._held.get(txid)
        if held is None or len(held) <= mark:
            return
        keys = held[mark:]
        del held[mark:]
        self._drop(txid, keys)

    def release(self, txid: int) -> None:
        self._pins.pop(txid, None)
        self._drop(txid, self._held.pop(txid, ()))

    # -- applying committed writes ------------------------------------------------------
    def apply(self, lsn: int, writes: dict[tuple[int, Key], Row | None]) -> None:
        horizon = self.horizon()
        self.collect(horizon)
        for (tid, key), row in writes.items():
            self.table(tid).add(key, lsn, row, horizon)

    def note_dropped(self, lsn: int, table_ids: Iterable[int]) -> None:
        """A commit at ``lsn`` dropped these tables: row locks on them fail from now on,
        and their cached rows are forgotten once no snapshot before ``lsn`` is left."""
        for tid in table_ids:
            self._closed[tid] = 0
            self._forget.append((lsn, tid))

    def is_dropped(self, table_id: int) -> bool:
        return self._closed.get(table_id) == 0

    def forget_table(self, table_id: int) -> None:
        """Release a dropped table's cached rows and the index maps built on them -- a
        slice per event-loop turn (freeing a million rows at once stalls every session of
        the instance for about half a second)."""
        t = self.tables.pop(table_id, None)
        if t is not None:
            free_in_slices(t.rows)
        indexes = self.__dict__.get("_borealis_indexes")  # engine.indexes
        ti = indexes.pop(table_id, None) if indexes is not None else None
        if ti is not None:
            for m in ti.maps.values():
                free_in_slices(m)

    def collect(self, horizon: int) -> None:
        """Drop the deleted keys every snapshot sees as deleted (``TableVersions.collect``),
        and the dropped tables no snapshot can read any more."""
        forget = self._forget
        while forget and forget[0][0] <= horizon:
            self.forget_table(forget.popleft()[1])
        for t in self.tables.values():
            if t.dead and t.dead[0][0] <= horizon:
                t.collect(horizon)

    def status_rows(self) -> list[dict[str, Any]]:
        return []

