"""Plan operators: small objects whose ``rows(ctx)`` generator yields row tuples.

A plan is a tree of these; it holds no per-execution state, so cached plans are reused
across executions and sessions.  Base scans read through the transaction
(``ctx.txn.scan`` / ``ctx.txn.get``) so a session sees its own uncommitted writes.

``batches(ctx)`` yields the same rows as ``rows(ctx)`` in lists of up to ``BATCH``.  An
operator that reads its whole input anyway (aggregation, sort, a hash join's build side)
pulls batches; operators on the way down that have a batch loop of their own (scan, filter,
project, hash join probe) then run their per-row work in list comprehensions and C-level
``map``/``itemgetter`` calls instead of one generator step per row and operator.  Only a
consumer that reads everything may pull batches: an operator evaluates a whole batch before
handing any of it on, so under LIMIT (which must not evaluate, lock or count rows it does
not return) everything stays row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from typing import Any, Callable, Iterator

from engine import errors
from engine import types as T
from engine.api import Column
from engine.expr import _num_div, ref_index
from engine.interrupts import CHECK_EVERY, checked, checker
from engine.keys import encode_key

Fn = Callable[[Any, Any], Any]


BATCH = CHECK_EVERY  # rows per list of ``Op.batches``


class Op:
    def rows(self, ctx: Any) -> Iterator[tuple]:
        raise NotImplementedError

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        """``rows(ctx)`` in lists of up to BATCH rows (see the module docstring: only for
        a consumer that reads every row)."""
        return chunks(self.rows(ctx))


def chunks(rows: Any) -> Iterator[list[tuple]]:
    """``rows`` in lists of up to BATCH."""
    it = iter(rows)
    while True:
        b = list(islice(it, BATCH))
        if not b:
            return
        yield b


def batched(op: Op) -> bool:
    """Whether ``op`` has a batch loop of its own (else its batches wrap its rows)."""
    return type(op).batches is not Op.batches


def scans_a_table(op: Any) -> bool:
    """Whether a plan reads a whole table somewhere (a ``TableScan`` below ``op``); walks
    the operator tree once, when the plan is built."""
    seen: set[int] = set()
    todo = [op]
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, TableScan):
            return True
        if isinstance(o, (Op, Plan)):
            for v in vars(o).values():
                if isinstance(v, (Op, Plan)):
                    todo.append(v)
                elif isinstance(v, (list, tuple)):
                    todo.extend(x for x in v if isinstance(x, (Op, Plan)))
    return False


def reads_in_batches(op: Op) -> bool:
    """Whether ``all_rows(op)`` pulls batches: not for a point select's plan (a key
    lookup, or a projection of one), which runs row by row."""
    return batched(op) and not (type(op) is Project and not batched(op.child))  # type: ignore[attr-defined]


def all_rows(op: Op, ctx: Any) -> list[tuple]:
    """Every row of ``op`` as a list, pulled in batches (row by row when no operator on
    the way down has a batch loop: a point select's plan)."""
    if not reads_in_batches(op):
        return list(op.rows(ctx))
    out: list[tuple] = []
    for b in op.batches(ctx):
        out += b
    return out


class TableScan(Op):
    """All visible rows; ``pad`` widens rows stored before an instant ADD COLUMN."""

    def __init__(self, table_id: int, pad: Callable[[tuple], tuple] | None = None) -> None:
        self.table_id = table_id
        self.pad = pad

    def pairs(self, ctx: Any) -> Iterator[tuple[bytes, tuple]]:
        pad = self.pad
        if pad is None:
            return checked(ctx.txn.scan(self.table_id, ctx.snapshot), ctx)
        return checked(((k, pad(r)) for k, r in ctx.txn.scan(self.table_id, ctx.snapshot)), ctx)

    def rows(self, ctx: Any) -> Iterator[tuple]:
        # interrupt check (engine.interrupts) at the start and every CHECK_EVERY rows
        check = checker(ctx)
        check()
        n = CHECK_EVERY
        pad = self.pad
        if pad is None:
            for _, row in ctx.txn.scan(self.table_id, ctx.snapshot):
                n -= 1
                if not n:
                    n = CHECK_EVERY
                    check()
                yield row
        else:
            for _, row in ctx.txn.scan(self.table_id, ctx.snapshot):
                n -= 1
                if not n:
                    n = CHECK_EVERY
                    check()
                yield pad(row)

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        check = checker(ctx)
        check()
        it = ctx.txn.scan(self.table_id, ctx.snapshot)
        pad, second = self.pad, itemgetter(1)
        while True:
            b = list(map(second, islice(it, BATCH)))
            if not b:
                return
            if pad is not None:
                b = list(map(pad, b))
            yield b
            check()


class KeyLookup(Op):
    """Primary-key equality: one ``get`` instead of a scan."""

    def __init__(self, table_id: int, key_fns: list[Fn], pad: Callable[[tuple], tuple] | None = None) -> None:
        self.table_id = table_id
        self.key_fns = key_fns
        self.pad = pad

    def pairs(self, ctx: Any) -> Iterator[tuple[bytes, tuple]]:
        vals = [f(None, ctx) for f in self.key_fns]
        if None in vals:
            return
        key = encode_key(vals)
        row = ctx.txn.get(self.table_id, key, ctx.snapshot)
        if row is not None:
            yield key, (row if self.pad is None else self.pad(row))

    def rows(self, ctx: Any) -> Iterator[tuple]:
        for _, row in self.pairs(ctx):
            yield row


class KeyedRows(Op):
    """A one-table access path's rows with the row key appended (read by ``LockRows``)."""

    def __init__(self, child: Op) -> None:
        self.child = child

    def rows(self, ctx: Any) -> Iterator[tuple]:
        for key, row in self.child.pairs(ctx):  # type: ignore[attr-defined]
            yield row + (key,)


class LockRows(Op):
    """SELECT ... FOR UPDATE / FOR SHARE over one table: lock each row that reaches it.

    It sits above the sort and below LIMIT (as in PostgreSQL), so only the rows returned
    are locked and rows skipped by SKIP LOCKED do not count against the limit; the row key
    is the child's column ``key_index`` (see ``KeyedRows``).  ``mode``: "wait" (a held lock
    raises ``LockBusy``; the session waits and re-runs the statement), "nowait" (55P03) or
    "skip" (SKIP LOCKED).  FOR SHARE / FOR KEY SHARE take shared row locks (they only
    block writers).  A row changed after the statement snapshot restarts the statement
    (READ COMMITTED re-reads it; higher isolation levels report 40001).
    """

    def __init__(self, child: Op, key_index: int, table_id: int, mode: str, table_name: str,
                 shared: bool = False) -> None:
        self.child, self.key_index, self.table_id = child, key_index, table_id
        self.mode, self.table_name, self.shared = mode, table_name, shared

    def rows(self, ctx: Any) -> Iterator[tuple]:
        from engine.api import LockBusy
        from engine.txn import Restart

        txn, tid, mode, shared, ki = ctx.txn, self.table_id, self.mode, self.shared, self.key_index
        for row in self.child.rows(ctx):
            key = row[ki]
            try:
                txn.lock(tid, key, shared)
            except LockBusy:
                if mode == "skip":
                    continue
                if mode == "nowait":
                    raise errors.LockNotAvailable(
                        f'could not obtain lock on row in relation "{self.table_name}"') from None
                raise
            if ctx.store.latest_lsn(tid, key) > ctx.snapshot:
                raise Restart(None)
            yield row


class VirtualScan(Op):
    def __init__(self, gen: Callable[[Any], Iterator[tuple]]) -> None:
        self.gen = gen

    def rows(self, ctx: Any) -> Iterator[tuple]:
        return checked(self.gen(ctx), ctx)


class Values(Op):
    def __init__(self, rows: list[list[Fn]]) -> None:
        self.rows_fns = rows

    def rows(self, ctx: Any) -> Iterator[tuple]:
        for fns in self.rows_fns:
            yield tuple(f(None, ctx) for f in fns)


class OneRow(Op):
    def rows(self, ctx: Any) -> Iterator[tuple]:
        yield ()


class Filter(Op):
    def __init__(self, child: Op, pred: Fn) -> None:
        self.child, self.pred = child, pred

    def pairs(self, ctx: Any) -> Iterator[tuple[bytes, tuple]]:
        pred = self.pred
        for k, row in self.child.pairs(ctx):  # type: ignore[attr-defined]
            if pred(row, ctx) is True:
                yield k, row

    def rows(self, ctx: Any) -> Iterator[tuple]:
        pred = self.pred
        for row in self.child.rows(ctx):
            if pred(row, ctx) is True:
                yield row

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        pred = self.pred
        for b in self.child.batches(ctx):
            out = [r for r in b if pred(r, ctx) is True]
            if out:
                yield out


class Project(Op):
    def __init__(self, child: Op, fns: list[Fn]) -> None:
        self.child, self.fns = child, fns
        # built once per plan, not per execution (a cached point select runs this path
        # tens of thousands of times a second)
        self._cols = self._columns()
        self._tf = _tuple_fn(fns)

    def _columns(self) -> Callable[[tuple], tuple] | None:
        """``itemgetter`` of the output when every output is a plain column (two or more:
        a one-index itemgetter returns the value, not a tuple)."""
        idx = [ref_index(f) for f in self.fns]
        return itemgetter(*idx) if len(idx) > 1 and None not in idx else None

    def rows(self, ctx: Any) -> Iterator[tuple]:
        fns = self.fns
        cols = self._cols
        if cols is not None:
            for row in self.child.rows(ctx):
                yield cols(row)
        elif len(fns) == 1:
            f = fns[0]
            for row in self.child.rows(ctx):
                yield (f(row, ctx),)
        else:
            for row in self.child.rows(ctx):
                yield tuple([f(row, ctx) for f in fns])

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        if not batched(self.child):  # e.g. a key lookup: row by row is cheaper
            # (the class's own rows: EXPLAIN ANALYZE counts this operator's batches already)
            yield from chunks(Project.rows(self, ctx))
            return
        cols = self._cols
        if cols is not None:
            for b in self.child.batches(ctx):
                yield list(map(cols, b))
            return
        tf = self._tf
        for b in self.child.batches(ctx):
            yield [tf(r, ctx) for r in b]


class NestedLoopJoin(Op):
    def __init__(self, left: Op, right: Op, pred: Fn | None, kind: str, lw: int, rw: int) -> None:
        self.left, self.right, self.pred, self.kind, self.lw, self.rw = left, right, pred, kind, lw, rw

    def rows(self, ctx: Any) -> Iterator[tuple]:
        right = all_rows(self.right, ctx)
        pred, kind = self.pred, self.kind
        lnull, rnull = (None,) * self.lw, (None,) * self.rw
        matched_r = [False] * len(right) if kind in ("right", "full") else None
        check, n, width = checker(ctx), CHECK_EVERY, len(right) or 1
        check()  # also when run many times over few rows (a recursive query's step)
        for l in self.left.rows(ctx):
            n -= width  # interrupt check about every CHECK_EVERY pairs
            if n <= 0:
                n = CHECK_EVERY
                check()
            hit = False
            for i, r in enumerate(right) if width <= CHECK_EVERY * 8 else _checked_enum(right, check):
                row = l + r
                if pred is None or pred(row, ctx) is True:
                    hit = True
                    if matched_r is not None:
                        matched_r[i] = True
                    yield row
            if not hit and kind in ("left", "full"):
                yield l + rnull
        if matched_r is not None:
            for i, r in enumerate(right):
                if not matched_r[i]:
                    yield lnull + r


def _checked_enum(items: list, check: Any) -> Iterator[tuple[int, Any]]:
    """enumerate(items) with an interrupt check every CHECK_EVERY items (a wide inner side)."""
    for start in range(0, len(items), CHECK_EVERY):
        check()
        yield from enumerate(items[start:start + CHECK_EVERY], start)


def _tuple_fn(fns: list[Fn]) -> Fn:
    """``lambda row, ctx: tuple(f(row, ctx) for f in fns)`` without a generator per row
    for the usual one to three functions (``col_ref`` columns read in place for two)."""
    if not fns:
        return lambda r, c: ()
    if len(fns) == 1:
        f0 = fns[0]
        return lambda r, c: (f0(r, c),)
    if len(fns) == 2:
        f0, f1 = fns
        i0, i1 = ref_index(f0), ref_index(f1)
        if i0 is not None:  # a column read in place (both columns: see _key_fn's itemgetter)
            return lambda r, c: (r[i0], f1(r, c))
        if i1 is not None:
            return lambda r, c: (f0(r, c), r[i1])
        return lambda r, c: (f0(r, c), f1(r, c))
    if len(fns) == 3:
        f0, f1, f2 = fns
        return lambda r, c: (f0(r, c), f1(r, c), f2(r, c))
    return lambda r, c: tuple([f(r, c) for f in fns])


def _key_fn(fns: list[Fn]) -> tuple[Callable, bool, bool]:
    """A hash key function over ``fns``: (fn, takes_ctx, scalar).  One key is the value
    itself (scalar), several a tuple; plain column reads become one ``itemgetter``."""
    idx = [ref_index(f) for f in fns]
    if None not in idx:
        return itemgetter(*idx), False, len(idx) == 1
    if len(fns) == 1:
        return fns[0], True, True
    return _tuple_fn(fns), True, False


class HashJoin(Op):
    """Equi-join: build a hash table on the right side's key, probe with the left's.

    A key holding NULL never matches: build keys with NULL are left out of the table, so a
    probe key with NULL finds nothing."""

    def __init__(self, left: Op, right: Op, lkey: list[Fn], rkey: list[Fn], residual: Fn | None,
                 kind: str, lw: int, rw: int) -> None:
        self.left, self.right, self.lkey, self.rkey = left, right, lkey, rkey
        self.residual, self.kind, self.lw, self.rw = residual, kind, lw, rw

    def _build(self, ctx: Any) -> tuple[list[tuple], dict]:
        """The right side's rows and key -> [(row index, row)] of those without NULL keys."""
        rights = all_rows(self.right, ctx)
        rkey, with_ctx, scalar = _key_fn(self.rkey)
        table: dict[Any, list[tuple[int, tuple]]] = {}
        for i, r in enumerate(rights):
            k = rkey(r, ctx) if with_ctx else rkey(r)
            if (k is not None) if scalar else (None not in k):
                hit = table.get(k)
                if hit is None:
                    table[k] = [(i, r)]
                else:
                    hit.append((i, r))
        return rights, table

    def rows(self, ctx: Any) -> Iterator[tuple]:
        rights, table = self._build(ctx)
        lkey, with_ctx, _ = _key_fn(self.lkey)
        kind, res = self.kind, self.residual
        matched = [False] * len(rights) if kind in ("right", "full") else None
        rnull, lnull = (None,) * self.rw, (None,) * self.lw
        get = table.get
        for l in self.left.rows(ctx):
            hit = False
            for i, r in get(lkey(l, ctx) if with_ctx else lkey(l), ()):
                row = l + r
                if res is None or res(row, ctx) is True:
                    hit = True
                    if matched is not None:
                        matched[i] = True
                    yield row
            if not hit and kind in ("left", "full"):
                yield l + rnull
        if matched is not None:
            for i, r in enumerate(rights):
                if not matched[i]:
                    yield lnull + r

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        if self.kind != "inner" or self.residual is not None:
            # outer joins and residual conditions: the row loop of ``rows``, in batches
            yield from chunks(HashJoin.rows(self, ctx))
            return
        _rights, table = self._build(ctx)
        lkey, with_ctx, _ = _key_fn(self.lkey)
        if all(len(v) == 1 for v in table.values()):  # a unique build key: one match at most
            get = {k: v[0][1] for k, v in table.items()}.get
            for b in self.left.batches(ctx):
                if with_ctx:
                    out = [l + r for l in b if (r := get(lkey(l, ctx))) is not None]
                else:
                    out = [l + r for l in b if (r := get(lkey(l))) is not None]
                if out:
                    yield out
            return
        get = {k: [r for _, r in v] for k, v in table.items()}.get
        for b in self.left.batches(ctx):
            out = []
            for l in b:
                rs = get(lkey(l, ctx) if with_ctx else lkey(l))
                if rs is not None:
                    out += [l + r for r in rs]
                    if len(out) >= BATCH:
                        yield out
                        out = []
            if out:
                yield out


# -- aggregation (specs and states live in engine.aggregates) --------------------------------
from engine.aggregates import AggSpec, agg_final as _agg_final, agg_init as _agg_init, agg_step as _agg_step  # noqa: E402,F401
from engine.aggregates import agg_folder, agg_stepper  # noqa: E402


class Aggregate(Op):
    """Output rows: group key values followed by aggregate results.

    When every aggregate is a plain count / sum / avg / min / max (``agg_folder``), rows are
    only sorted into per-group lists as they arrive (key by ``itemgetter`` when the keys are
    columns) and the lists are folded into the groups' states with one call per aggregate
    and group -- every FOLD_AT rows, so a fold reads rows still in the CPU cache (and at
    least twice the group count apart, so folding stays linear in the rows), and at the end.
    Other aggregates step their state row by row."""

    FOLD_AT = 2048

    def __init__(self, child: Op, keys: list[Fn], aggs: list[AggSpec]) -> None:
        self.child, self.keys, self.aggs = child, keys, aggs

    def rows(self, ctx: Any) -> Iterator[tuple]:
        keys, aggs = self.keys, self.aggs
        folds = [agg_folder(a) for a in aggs]
        if None in folds:
            yield from self._stepped(ctx)
        elif not keys:
            sts = [_agg_init(a) for a in aggs]
            for b in self.child.batches(ctx):
                for fold, st in zip(folds, sts):
                    fold(st, b, ctx)
            yield tuple(_agg_final(a, st) for a, st in zip(aggs, sts))
        else:
            yield from self._folded(ctx, folds)

    def _folded(self, ctx: Any, folds: list) -> Iterator[tuple]:
        keys, aggs = self.keys, self.aggs
        key_of, with_ctx, scalar = _key_fn(keys)
        groups: dict[Any, list] = {}  # key -> aggregate states
        bufs: dict[Any, list] = {}  # key -> rows not folded yet
        originals: dict = {}  # hashable stand-in -> key (array/json keys)
        get = bufs.get
        pending, fold_at = 0, self.FOLD_AT

        def fold_all() -> None:
            for k, buf in bufs.items():
                if buf:
                    for fold, st in zip(folds, groups[k]):
                        fold(st, buf, ctx)
                    buf.clear()

        for b in self.child.batches(ctx):
            for row in b:
                k = key_of(row, ctx) if with_ctx else key_of(row)
                try:
                    buf = get(k)
                except TypeError:
                    k = _stand_in(k, originals)
                    buf = get(k)
                if buf is None:
                    buf = bufs[k] = []
                    groups[k] = [_agg_init(a) for a in aggs]
                buf.append(row)
            pending += len(b)
            if pending >= fold_at:
                fold_all()
                pending, fold_at = 0, max(self.FOLD_AT, 2 * len(groups))
        fold_all()
        for k, sts in groups.items():
            if originals:
                k = originals.get(k, k)
            yield ((k,) if scalar else k) + tuple(_agg_final(a, st) for a, st in zip(aggs, sts))

    def _stepped(self, ctx: Any) -> Iterator[tuple]:
        keys, aggs = self.keys, self.aggs
        groups: dict[tuple, list[list]] = {}
        originals: dict[tuple, tuple] = {}  # hashable stand-in -> key (array/json keys)
        steps = [agg_stepper(a) for a in aggs]
        key_of = _tuple_fn(keys)
        for b in self.child.batches(ctx):
            for row in b:
                k = key_of(row, ctx)
                try:
                    sts = groups.get(k)
                except TypeError:
                    k = _stand_in(k, originals)
                    sts = groups.get(k)
                if sts is None:
                    sts = groups[k] = [_agg_init(a) for a in aggs]
                for step, st in zip(steps, sts):
                    step(st, row, ctx)
        if not groups and not keys:
            groups[()] = [_agg_init(a) for a in aggs]
        for k, sts in groups.items():
            if originals:
                k = originals.get(k, k)
            yield k + tuple(_agg_final(a, st) for a, st in zip(aggs, sts))


class Sort(Op):
    def __init__(self, child: Op, keys: list[tuple[int, bool, bool]]) -> None:
        self.child, self.keys = child, keys  # (column index, desc, nulls_first)

    def rows(self, ctx: Any) -> Iterator[tuple]:
        rows = all_rows(self.child, ctx)
        for idx, desc, nulls_first in reversed(self.keys):
            # key: (rank, value) with nulls ranked so the final order honours NULLS FIRST/LAST
            null_rank = (1 if desc else 0) if nulls_first else (0 if desc else 1)
            nn_rank = 1 - null_rank
            try:
                rows.sort(key=lambda r: (null_rank, 0) if r[idx] is None else (nn_rank, r[idx]), reverse=desc)
            except TypeError as e:
                raise errors.DatatypeMismatch(f"could not compare values: {e}") from None
        return iter(rows)


class Limit(Op):
    def __init__(self, child: Op, limit: Fn | None, offset: Fn | None) -> None:
        self.child, self.limit, self.offset = child, limit, offset

    def rows(self, ctx: Any) -> Iterator[tuple]:
        lim = self.limit(None, ctx) if self.limit else None
        off = self.offset(None, ctx) if self.offset else 0
        off = off or 0
        if (lim is not None and lim < 0) or off < 0:
            raise errors.SqlError("LIMIT must not be negative", sqlstate="2201W")
        if lim is not None and lim == 0:
            return
        n = 0
        for i, row in enumerate(self.child.rows(ctx)):
            if i < off:
                continue
            n += 1
            yield row
            if lim is not None and n >= lim:
                return  # pull no further row: FOR UPDATE below must not lock it


def _stand_in(key: Any, originals: dict) -> Any:
    """A group key holding arrays or json (unhashable) -> its hashable stand-in, remembered
    in ``originals`` so the group comes out under the key itself."""
    hk = hashable(key)
    originals.setdefault(hk, key)
    return hk


def hashable(v: Any) -> Any:
    """A hashable stand-in for a row/value holding arrays (lists) or json objects (dicts)."""
    if isinstance(v, tuple):
        return tuple(hashable(x) for x in v)
    if isinstance(v, list):
        return ("\x00a", tuple(hashable(x) for x in v))
    if isinstance(v, dict):
        return ("\x00j", tuple(sorted((k, hashable(x)) for k, x in v.items())))
    return v


class _HSet:
    """A set of rows that falls back to ``hashable`` keys once an unhashable row shows up."""

    __slots__ = ("s",)

    def __init__(self) -> None:
        self.s: set = set()

    def add_new(self, k: Any) -> bool:
        try:
            if k in self.s:
                return False
        except TypeError:
            k = hashable(k)
            if k in self.s:
                return False
        self.s.add(k)
        return True


class Distinct(Op):
    def __init__(self, child: Op, width: int | None = None) -> None:
        self.child, self.width = child, width

    def rows(self, ctx: Any) -> Iterator[tuple]:
        seen = _HSet()
        w = self.width
        for row in self.child.rows(ctx):
            k = row if w is None else row[:w]
            if seen.add_new(k):
                yield row


class Strip(Op):
    def __init__(self, child: Op, width: int) -> None:
        self.child, self.width = child, width

    def rows(self, ctx: Any) -> Iterator[tuple]:
        w = self.width
        for row in self.child.rows(ctx):
            yield row[:w]

    def batches(self, ctx: Any) -> Iterator[list[tuple]]:
        w = self.width
        for b in self.child.batches(ctx):
            yield [r[:w] for r in b]


class SetOp(Op):
    def __init__(self, left: Op, right: Op, kind: str, distinct: bool, convs: list[Callable | None]) -> None:
        self.left, self.right, self.kind, self.distinct, self.convs = left, right, kind, distinct, convs

    def _right(self, ctx: Any) -> Iterator[tuple]:
        convs = self.convs
        if not any(convs):
            yield from self.right.rows(ctx)
            return
        for row in self.right.rows(ctx):
            yield tuple(v if c is None or v is None else c(v) for v, c in zip(row, convs))

    def rows(self, ctx: Any) -> Iterator[tuple]:
        if self.kind == "union":
            if not self.distinct:
                yield from self.left.rows(ctx)
                yield from self._right(ctx)
                return
            seen = _HSet()
            for src in (self.left.rows(ctx), self._right(ctx)):
                for row in src:
                    if seen.add_new(row):
                        yield row
            return
        right: dict[tuple, int] = {}
        for row in self._right(ctx):
            row = hashable(row)
            right[row] = right.get(row, 0) + 1
        emitted: set = set()
        for orig in self.left.rows(ctx):
            row = hashable(orig)
            if self.kind == "intersect":
                if right.get(row, 0) > 0:
                    if self.distinct:
                        if row not in emitted:
                            emitted.add(row)
                            yield orig
                    else:
                        right[row] -= 1
                        yield orig
            else:  # except
                if self.distinct:
                    if row not in right and row not in emitted:
                        emitted.add(row)
                        yield orig
                elif right.get(row, 0) > 0:
                    right[row] -= 1
                else:
                    yield orig


class Plan:
    """A planned query: the operator tree plus its row description."""

    def __init__(self, root: Op, columns: list[Column], correlated: bool = False) -> None:
        self.root = root
        self.columns = columns
        self.correlated = correlated

    def rows(self, ctx: Any) -> Iterator[tuple]:
        return self.root.rows(ctx)
