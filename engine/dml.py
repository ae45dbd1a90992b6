"""INSERT / UPDATE / DELETE plans.

Each plan is built once (cached per statement text and catalog version) and run with
``run(ctx) -> (command tag, returned rows)``.  Writes go through ``ctx.txn``: lock the row
key (``LockBusy`` propagates to the session, which waits and restarts the statement),
check for write conflicts against the statement snapshot, then buffer the new row.
Uniqueness of primary keys is checked against the latest committed state after locking
the key; UNIQUE constraints lock the value and scan the table.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.api import Column
from engine.catalog import TableDef
from engine.executor import Filter, KeyLookup, Op, TableScan
from engine.expr import CExpr, Compiler, Scope, const
from engine.interrupts import checked
from engine.keys import encode_key
from engine.planner import Planner, has_columns, make_column, output_name

WRITE_CHECK_EVERY = 256  # rows between two interrupt checks in a write loop (a row costs more than a read)
Fn = Callable[[Any, Any], Any]


def _is_default(node: exp.Expression) -> bool:
    return (isinstance(node, exp.Var) and node.name.upper() == "DEFAULT") or (
        isinstance(node, exp.Column) and not node.table and node.name.lower() == "default" and not node.this.quoted)


def default_expr(planner: Planner, td: TableDef, i: int) -> CExpr:
    col = td.columns[i]
    if col.default is None:
        return const(None, col.type_oid, col.typmod)
    import sqlglot

    cp = Compiler(planner.env, None)
    return cp.coerce(cp.compile(sqlglot.parse_one(col.default, read="postgres")), col.type_oid, col.typmod)


def _scope(td: TableDef, alias: str | None = None) -> Scope:
    return Scope([(alias or td.name, c.name, c.type_oid, c.typmod) for c in td.columns])


def _fmt_vals(vals: tuple) -> str:
    return ", ".join("null" if v is None else T.to_text(v) for v in vals)


def reads_target(node: exp.Expression) -> bool:
    """Does an UPDATE / DELETE read its target's rows (and so need SELECT on it): a WHERE,
    RETURNING, FROM / USING, or SET expressions naming columns?"""
    if any(node.args.get(k) for k in ("where", "returning", "from_", "using")):
        return True
    return isinstance(node, exp.Update) and any(
        isinstance(e, exp.EQ) and has_columns(e.expression) for e in node.expressions)


class _Writer:
    """Shared row checks: NOT NULL, key computation, uniqueness."""

    def __init__(self, td: TableDef, planner: Planner | None = None) -> None:
        self.td = td
        self.not_null = [i for i, c in enumerate(td.columns) if c.not_null]
        self.pad = td.pad_fn()
        self.checks: list[tuple[str, Fn]] = []
        self.rls: list[tuple[str | None, Fn]] = []  # row-level security checks (engine.rls): (policy, predicate)
        if td.checks and planner is not None:
            import sqlglot

            cp = Compiler(planner.env, _scope(td))
            for name, text in td.checks:
                self.checks.append((name, cp.compile_bool(sqlglot.parse_one(text, read="postgres")).fn))

    def check_row(self, row: tuple, ctx: Any = None) -> None:
        for policy, f in self.rls:  # before the constraints, as PostgreSQL checks them
            if f(row, ctx) is not True:
                shown = f' "{policy}"' if policy is not None else ""
                raise errors.SqlError(f'new row violates row-level security policy{shown} for table "{self.td.name}"',
                                      sqlstate="42501")
        for i in self.not_null:
            if row[i] is None:
                td = self.td
                raise errors.NotNullViolation(
                    f'null value in column "{td.columns[i].name}" of relation "{td.name}" violates not-null constraint',
                    detail=f"Failing row contains ({_fmt_vals(row)}).")
        for name, f in self.checks:
            if f(row, ctx) is False:
                raise errors.CheckViolation(
                    f'new row for relation "{self.td.name}" violates check constraint "{name}"',
                    detail=f"Failing row contains ({_fmt_vals(row)}).")

    def key_of(self, row: tuple, ctx: Any) -> bytes:
        td = self.td
        if td.pk:
            return encode_key([row[i] for i in td.pk])
        return ctx.db.next_rowid(td, ctx.txn)

    def claim_key(self, key: bytes, row: tuple, ctx: Any) -> None:
        """Lock a key we are about to insert; 23505 if a committed or own row holds it."""
        td = self.td
        txn = ctx.txn
        txn.lock(td.table_id, key)
        if td.pk and txn.get(td.table_id, key, ctx.store.snapshot()) is not None:
            names = ", ".join(td.columns[i].name for i in td.pk)
            raise errors.UniqueViolation(
                f'duplicate key value violates unique constraint "{td.pkey_name}"',
                detail=f"Key ({names})=({_fmt_vals(tuple(row[i] for i in td.pk))}) already exists.")

    def check_uniques(self, key: bytes, row: tuple, ctx: Any, old: tuple | None = None) -> None:
        td = self.td
        for name, cols in _unique_sets(td):
            vals = tuple(row[i] for i in cols)
            if None in vals or (old is not None and tuple(old[i] for i in cols) == vals):
                continue
            ctx.txn.lock(td.table_id, b"\xffu" + name.encode() + b"\x00" + encode_key(vals))
            from engine.indexes import candidates

            for k, other in candidates(_AtLatest(ctx), td.table_id, tuple(cols), vals, self.pad):
                if k != key and tuple(other[i] for i in cols) == vals:
                    raise errors.UniqueViolation(
                        f'duplicate key value violates unique constraint "{name}"',
                        detail=f"Key ({', '.join(td.columns[i].name for i in cols)})=({_fmt_vals(vals)}) already exists.")


def _unique_sets(td: TableDef) -> list:
    """UNIQUE constraints plus unique indexes (CREATE UNIQUE INDEX)."""
    if not td.indexes:
        return td.uniques
    return list(td.uniques) + [(ix[0], list(ix[1])) for ix in td.indexes if len(ix) > 2 and ix[2]]


class _AtLatest:
    """A view of the execution context reading at the store's latest snapshot (unique checks)."""

    __slots__ = ("store", "txn", "snapshot")

    def __init__(self, ctx: Any) -> None:
        self.store, self.txn, self.snapshot = ctx.store, ctx.txn, ctx.store.snapshot()


class _Returning:
    def __init__(self, planner: Planner, td: TableDef, node: exp.Expression | None, alias: str | None,
                 scope: Scope | None = None) -> None:
        self.fns: list[Fn] | None = None
        self.columns: list[Column] | None = None
        if node is None:
            return
        scope = scope or _scope(td, alias)
        items = planner._expand_stars(node.expressions, scope)
        items = [e for e in items if not (isinstance(e, exp.Column) and e.name == _KEY_COL)]
        cp = Compiler(planner.env, scope)
        outs = [cp.compile(e.this if isinstance(e, exp.Alias) else e) for e in items]
        self.fns = [c.fn for c in outs]
        self.columns = [make_column(output_name(e), c) for e, c in zip(items, outs)]

    def row(self, row: tuple, ctx: Any) -> tuple:
        return tuple(f(row, ctx) for f in self.fns)  # type: ignore[union-attr]


def _identity_value(c: Any, overriding: str | None) -> str:
    """What an explicit value given for identity column ``c`` becomes: "value" (stored as
    given) or "default" (OVERRIDING USER VALUE: the sequence's next value); a GENERATED ALWAYS
    column refuses one without OVERRIDING SYSTEM VALUE, as PostgreSQL does."""
    if overriding == "user":
        return "default"
    if c.identity == "a" and overriding != "system":
        raise errors.SqlError(f'cannot insert a non-DEFAULT value into column "{c.name}"', sqlstate="428C9",
                              detail=f'Column "{c.name}" is an identity column defined as GENERATED ALWAYS.',
                              hint="Use OVERRIDING SYSTEM VALUE to override.")
    return "value"


class InsertPlan:
    def __init__(self, planner: Planner, node: exp.Insert) -> None:
        target = node.this
        cols_node = None
        if isinstance(target, exp.Schema):
            cols_node = target.expressions
            target = target.this
        td = planner.lookup_table(target)
        planner.tables.add(td.table_id)
        self.td = td
        self.writer = _Writer(td, planner)
        from engine.fkeys import FkChecker

        self.fk = FkChecker(planner, td)
        if cols_node:
            positions = []
            for ident in cols_node:
                i = td.column_index(ident.name)
                if i is None:
                    raise errors.UndefinedColumn(f'column "{ident.name}" of relation "{td.name}" does not exist',
                                                 node=ident)
                positions.append(i)
        else:
            positions = list(range(len(td.columns)))
        planner.need(td, "a", tuple(td.columns[i].name for i in positions))
        if node.args.get("returning") is not None:
            planner.need(td, "r")
        conflict = node.args.get("conflict")
        if conflict is not None and conflict.args.get("expressions"):  # DO UPDATE SET ...
            planner.need(td, "w", tuple(e.this.name for e in conflict.args["expressions"]
                                        if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)))
        self.positions = positions
        overriding = node.meta.get("overriding") if node._meta else None
        self.conflict = _OnConflict(planner, td, node.args["conflict"]) if node.args.get("conflict") is not None else None
        defaults = {i: default_expr(planner, td, i) for i in range(len(td.columns))}
        self.fill = [(i, defaults[i].fn) for i in range(len(td.columns))
                     if i not in positions and td.columns[i].default is not None]
        src = node.expression
        if src is None:  # INSERT ... DEFAULT VALUES: one row of defaults
            src = exp.Values(expressions=[exp.Tuple(expressions=[])])
        self.values: list[list[Fn]] | None = None
        self.source = None
        cp = Compiler(planner.env, None)
        if isinstance(src, exp.Values) and not has_subquery(src):
            self.values = []
            for tup in src.expressions:
                items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
                if len(items) > len(positions):
                    raise errors.SyntaxErr("INSERT has more expressions than target columns",
                                           node=items[len(positions)])
                if cols_node and len(items) < len(positions):
                    raise errors.SyntaxErr("INSERT has more target columns than expressions",
                                           node=cols_node[len(items)])
                fns = []
                for pos, e in zip(positions, items):
                    c = td.columns[pos]
                    if c.identity and not _is_default(e):
                        if _identity_value(c, overriding) == "default":
                            fns.append(defaults[pos].fn)
                            continue
                    fns.append(defaults[pos].fn if _is_default(e) else cp.coerce(cp.compile(e), c.type_oid, c.typmod).fn)
                for pos in positions[len(items):]:
                    fns.append(defaults[pos].fn)
                self.values.append(fns)
        else:
            plan = planner.plan_query(src)
            if len(plan.columns) > len(positions):
                raise errors.SyntaxErr("INSERT has more expressions than target columns")
            for pos in positions[: len(plan.columns)]:
                if td.columns[pos].identity and _identity_value(td.columns[pos], overriding) == "default":
                    raise errors.FeatureNotSupported(
                        "feature not supported: OVERRIDING USER VALUE with INSERT ... SELECT")
            self.source = plan
            self.convs = [T.caster(pc.type_oid if pc.type_oid != T.UNKNOWN else T.TEXT, td.columns[pos].type_oid,
                                   td.columns[pos].typmod, explicit=False)
                          for pc, pos in zip(plan.columns, positions)]
            self.positions = positions[: len(plan.columns)]
            self.fill += [(i, defaults[i].fn) for i in positions[len(plan.columns):] if td.columns[i].default is not None]
        self.returning = _Returning(planner, td, node.args.get("returning"), None)
        self.columns = self.returning.columns

    def _rows(self, ctx: Any) -> Any:
        n = len(self.td.columns)
        if self.values is not None:
            for fns in self.values:
                row = [None] * n
                for i, f in self.fill:
                    row[i] = f(None, ctx)
                for pos, f in zip(self.positions, fns):
                    row[pos] = f(None, ctx)
                yield tuple(row)
            return
        src = list(self.source.rows(ctx))  # materialise first: INSERT ... SELECT from the same table
        for srow in src:
            row = [None] * n
            for i, f in self.fill:
                row[i] = f(None, ctx)
            for pos, v, conv in zip(self.positions, srow, self.convs):
                row[pos] = conv(v) if conv is not None and v is not None else v
            yield tuple(row)

    def run(self, ctx: Any) -> tuple[str, list]:
        td, w = self.td, self.writer
        out = []
        count = 0
        oc = self.conflict
        touched: set[bytes] = set()
        for row in checked(self._rows(ctx), ctx, WRITE_CHECK_EVERY):
            w.check_row(row, ctx)
            if oc is not None:
                hit = oc.find(row, ctx, w)
                if hit is not None:
                    key, existing = hit
                    if oc.sets is None:
                        continue
                    if key in touched:
                        raise errors.SqlError("ON CONFLICT DO UPDATE command cannot affect row a second time",
                                              sqlstate="21000",
                                              hint="Ensure that no rows proposed for insertion within the same "
                                                   "command have duplicate constrained values.")
                    new = oc.update(existing, row, ctx)
                    if new is None:
                        continue
                    w.check_row(new, ctx)
                    if td.uniques or td.indexes:
                        w.check_uniques(key, new, ctx, existing)
                    if self.fk.active:
                        self.fk.check_row(new, ctx, existing)
                        self.fk.parent_changed(existing, new, ctx)
                    ctx.txn.put(td.table_id, key, new)
                    touched.add(key)
                    count += 1
                    if self.returning.fns is not None:
                        out.append(self.returning.row(new, ctx))
                    continue
            key = w.key_of(row, ctx)
            w.claim_key(key, row, ctx)
            if td.uniques or td.indexes:
                w.check_uniques(key, row, ctx)
            if self.fk.out:
                self.fk.check_row(row, ctx)
            ctx.txn.put(td.table_id, key, row)
            touched.add(key)
            count += 1
            if self.returning.fns is not None:
                out.append(self.returning.row(row, ctx))
        return f"INSERT 0 {count}", out


_KEY_COL = "\x00key"


class _OnConflict:
    """INSERT ... ON CONFLICT: find the arbiter constraint, then skip or update the existing row."""

    def __init__(self, planner: Planner, td: TableDef, node: exp.OnConflict) -> None:
        self.td = td
        keys = [o.this.name if isinstance(o, exp.Ordered) else o.name for o in node.args.get("conflict_keys") or []]
        cname = node.args.get("constraint")
        arbiters: list[tuple[str, list[int]]] = []  # ("pk" | unique name, positions)
        cands = ([("pk", list(td.pk))] if td.pk else []) + [(n, list(c)) for n, c in td.uniques]
        if cname is not None:
            name = cname.name
            arbiters = [(n, c) for n, c in cands if (td.pkey_name if n == "pk" else n) == name]
            if not arbiters:
                raise errors.SqlError(f'constraint "{name}" for table "{td.name}" does not exist', sqlstate="42704")
        elif keys:
            pos = []
            for k in keys:
                i = td.column_index(k)
                if i is None:
                    raise errors.UndefinedColumn(f'column "{k}" does not exist')
                pos.append(i)
            arbiters = [(n, c) for n, c in cands if sorted(c) == sorted(pos)]
            if not arbiters:
                raise errors.SqlError("there is no unique or exclusion constraint matching the ON CONFLICT specification",
                                      sqlstate="42P10")
        else:
            arbiters = cands
        self.arbiters = arbiters
        action = node.args.get("action")
        self.sets: list[tuple[int, Fn]] | None = None
        self.where: Fn | None = None
        if action is not None and "UPDATE" in str(action.this if hasattr(action, "this") else action).upper():
            if not keys and cname is None:
                raise errors.SqlError("ON CONFLICT DO UPDATE requires inference specification or constraint name",
                                      sqlstate="42601",
                                      hint="For example, ON CONFLICT (column_name).")
            scope = Scope([(td.name, c.name, c.type_oid, c.typmod) for c in td.columns]
                          + [("excluded", c.name, c.type_oid, c.typmod) for c in td.columns])
            cp = Compiler(planner.env, scope)
            self.sets = _compile_sets(planner, td, cp, node.expressions)
            where = node.args.get("where")
            if where is not None:
                self.where = cp.compile_bool(where.this).fn

    def find(self, row: tuple, ctx: Any, w: _Writer) -> tuple[bytes, tuple] | None:
        td, txn = self.td, ctx.txn
        snap = ctx.store.snapshot()
        for name, cols in self.arbiters:
            vals = [row[i] for i in cols]
            if None in vals:
                continue
            if name == "pk":
                key = encode_key(vals)
                txn.lock(td.table_id, key)
                old = txn.get(td.table_id, key, snap)
                if old is not None:
                    return key, (w.pad(old) if w.pad else old)
                continue
            txn.lock(td.table_id, b"\xffu" + name.encode() + b"\x00" + encode_key(vals))
            t = tuple(vals)
            for k, other in txn.scan(td.table_id, snap):
                if w.pad is not None:
                    other = w.pad(other)
                if tuple(other[i] for i in cols) == t:
                    txn.lock(td.table_id, k)
                    return k, other
        return None

    def update(self, existing: tuple, proposed: tuple, ctx: Any) -> tuple | None:
        both = existing + proposed
        if self.where is not None and self.where(both, ctx) is not True:
            return None
        new = list(existing)
        for i, f in self.sets or []:
            new[i] = f(both, ctx)
        return tuple(new)


class _KeyedScan(Op):
    """Target rows of UPDATE ... FROM / DELETE ... USING with the row key appended."""

    def __init__(self, src: Any) -> None:
        self.src = src

    def rows(self, ctx: Any) -> Any:
        for k, r in self.src.pairs(ctx):
            yield r + (k,)


def _joined_targets(planner: Planner, td: TableDef, alias: str, items: list[exp.Expression],
                    where: exp.Expression | None) -> tuple[Any, Scope]:
    """An operator yielding ``target row + (key,) + from row`` for UPDATE FROM / DELETE USING."""
    from engine.executor import NestedLoopJoin
    from engine.planner import and_all, conjuncts

    tcols = [(alias, c.name, c.type_oid, c.typmod) for c in td.columns] + [(None, _KEY_COL, T.BYTEA, -1)]
    rop, rcols, _ = planner.plan_from_item(items[0], None)
    for it in items[1:]:
        op2, cols2, _ = planner.plan_from_item(it, None)
        rop = NestedLoopJoin(rop, op2, None, "inner", len(rcols), len(cols2))
        rcols = rcols + cols2
    scope = Scope(tcols + rcols)
    # conjuncts touching only the target filter the scan (primary-key lookups stay possible)
    tscope = Scope(tcols)
    own, rest = [], []
    for p in conjuncts(where):
        refs = list(p.find_all(exp.Column))
        if refs and all(_col_in(tscope, c) for c in refs) and not any(True for _ in p.find_all(exp.Select)):
            own.append(p)
        else:
            rest.append(p)
    lop = _KeyedScan(planner.access_path(TableScan(td.table_id, td.pad_fn()), Scope(tcols), td, and_all(own)))
    on = and_all(rest)
    if on is None:
        return NestedLoopJoin(lop, rop, None, "inner", len(tcols), len(rcols)), scope
    return planner._join(lop, rop, on, "inner", tcols, rcols, scope), scope


def _col_in(scope: Scope, c: exp.Column) -> bool:
    try:
        return scope.find(c.name, c.table or None) is not None
    except errors.SqlError:
        return False


def has_subquery(node: exp.Expression) -> bool:
    return any(True for _ in node.find_all(exp.Select))


def _target_path(planner: Planner, node: exp.Expression, td: TableDef, alias: str | None) -> tuple[Any, Scope]:
    scope = _scope(td, alias)
    where = node.args.get("where")
    op = planner.access_path(TableScan(td.table_id, td.pad_fn()), scope, td, where.this if where is not None else None)
    return op, scope


class _Recheck:
    """READ COMMITTED re-check of a target row another transaction changed and committed
    after the statement's snapshot (PostgreSQL's EvalPlanQual): the row's newest version
    is used if it still satisfies the WHERE clause; the statement keeps its snapshot."""

    def __init__(self, planner: Planner, node: exp.Expression, td: TableDef, scope: Scope) -> None:
        where = node.args.get("where")
        self.pred = Compiler(planner.env, scope).compile_bool(where.this).fn if where is not None else None
        self.pad = td.pad_fn()

    def target(self, ctx: Any, tid: int, key: bytes) -> tuple | None:
        """Lock the row; the version to change (None: skip it), or Restart at higher levels."""
        txn = ctx.txn
        if txn.isolation != "read committed":
            txn.lock_for_update(tid, key, ctx.snapshot)
            return _SNAPSHOT_ROW
        txn.lock(tid, key)
        if ctx.store.latest_lsn(tid, key) <= ctx.snapshot:
            return _SNAPSHOT_ROW
        row = txn.get(tid, key, ctx.store.snapshot())
        if row is None:
            return None  # deleted meanwhile
        if self.pad is not None:
            row = self.pad(row)
        if self.pred is not None and self.pred(row, ctx) is not True:
            return None
        return row


_SNAPSHOT_ROW: Any = object()  # the row read at the statement's snapshot is current


class UpdatePlan:
    def __init__(self, planner: Planner, node: exp.Update) -> None:
        frm = node.args.get("from_")
        td = planner.lookup_table(node.this)
        planner.tables.add(td.table_id)
        planner.need(td, "w", tuple(e.this.name for e in node.expressions
                                    if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)))
        if reads_target(getattr(planner, "dml_source", None) or node):
            planner.need(td, "r")
        alias = node.this.alias or None
        self.td = td
        self.writer = _Writer(td, planner)
        self.joined = None
        if frm is not None:
            where = node.args.get("where")
            items = [frm.this] + [j.this for j in node.args.get("joins") or []]
            self.joined, scope = _joined_targets(planner, td, alias or td.name, items,
                                                 where.this if where is not None else None)
            self.path = None
        else:
            self.path, scope = _target_path(planner, node, td, alias or td.name)
        self.recheck = _Recheck(planner, node, td, scope) if self.joined is None else None
        cp = Compiler(planner.env, scope)
        self.sets = sets = _compile_sets(planner, td, cp, node.expressions)
        self.pk_changes = any(i in td.pk for i, _ in sets)
        self.returning = _Returning(planner, td, node.args.get("returning"), alias,
                                    scope if self.joined is not None else None)
        self.columns = self.returning.columns
        from engine.fkeys import FkChecker

        self.fk = FkChecker(planner, td)

    def run(self, ctx: Any) -> tuple[str, list]:
        td, w, txn = self.td, self.writer, ctx.txn
        tid = td.table_id
        n = len(td.columns)
        if self.joined is not None:
            seen: dict[bytes, tuple] = {}
            for row in self.joined.rows(ctx):
                k = row[n]
                if k not in seen:
                    seen[k] = row
            targets = [(k, r) for k, r in seen.items()]
        else:
            targets = list(self.path.pairs(ctx))
        out = []
        count = 0
        for key, full in checked(targets, ctx, WRITE_CHECK_EVERY):
            old = full[:n] if self.joined is not None else full
            if self.recheck is None:
                txn.lock_for_update(tid, key, ctx.snapshot)
            else:
                newest = self.recheck.target(ctx, tid, key)
                if newest is None:
                    continue
                if newest is not _SNAPSHOT_ROW:
                    old = full = newest
            count += 1
            new = list(old)
            for i, f in self.sets:
                new[i] = f(full, ctx)
            row = tuple(new)
            w.check_row(row, ctx)
            if self.pk_changes:
                nkey = w.key_of(row, ctx)
                if nkey != key:
                    w.claim_key(nkey, row, ctx)
                    txn.put(tid, key, None)
                    key = nkey
            if td.uniques or td.indexes:
                w.check_uniques(key, row, ctx, old)
            if self.fk.active:
                self.fk.check_row(row, ctx, old)
                self.fk.parent_changed(old, row, ctx)
            txn.put(tid, key, row)
            if self.returning.fns is not None:
                out.append(self.returning.row(row + full[n:] if self.joined is not None else row, ctx))
        return f"UPDATE {count}", out


class DeletePlan:
    def __init__(self, planner: Planner, node: exp.Delete) -> None:
        using = node.args.get("using")
        td = planner.lookup_table(node.this)
        planner.tables.add(td.table_id)
        planner.need(td, "d", ())
        if reads_target(getattr(planner, "dml_source", None) or node):
            planner.need(td, "r")
        alias = node.this.alias or None
        self.td = td
        self.joined = None
        scope = None
        if using:
            where = node.args.get("where")
            self.joined, scope = _joined_targets(planner, td, alias or td.name, list(using),
                                                 where.this if where is not None else None)
        else:
            self.path, path_scope = _target_path(planner, node, td, alias or td.name)
        self.recheck = _Recheck(planner, node, td, path_scope) if self.joined is None else None
        self.returning = _Returning(planner, td, node.args.get("returning"), alias, scope)
        self.columns = self.returning.columns
        from engine.fkeys import FkChecker

        self.fk = FkChecker(planner, td)

    def run(self, ctx: Any) -> tuple[str, list]:
        txn, tid = ctx.txn, self.td.table_id
        n = len(self.td.columns)
        if self.joined is not None:
            seen: dict[bytes, tuple] = {}
            for row in self.joined.rows(ctx):
                seen.setdefault(row[n], row)
            targets = list(seen.items())
        else:
            targets = list(self.path.pairs(ctx))
        out = []
        fk = self.fk if self.fk.inc else None
        count = 0
        for key, old in checked(targets, ctx, WRITE_CHECK_EVERY):
            if self.recheck is None:
                txn.lock_for_update(tid, key, ctx.snapshot)
            else:
                newest = self.recheck.target(ctx, tid, key)
                if newest is None:
                    continue
                if newest is not _SNAPSHOT_ROW:
                    old = newest
            count += 1
            txn.put(tid, key, None)
            if fk is not None:
                fk.parent_changed(old[:n], None, ctx)
            if self.returning.fns is not None:
                out.append(self.returning.row(old, ctx))
        return f"DELETE {count}", out


__all__ = ["InsertPlan", "UpdatePlan", "DeletePlan", "KeyLookup", "Filter"]


def _compile_sets(planner: Any, td: Any, cp: Compiler, assignments: list) -> list[tuple[int, Any]]:
    """``SET col = expr, ...`` (UPDATE and ON CONFLICT DO UPDATE) -> [(column index, fn)]."""
    sets = []
    for eq in assignments:
        name = eq.this.name
        i = td.column_index(name)
        if i is None:
            raise errors.UndefinedColumn(f'column "{name}" of relation "{td.name}" does not exist')
        c = td.columns[i]
        if _is_default(eq.expression):
            f = default_expr(planner, td, i).fn
        elif c.identity == "a":
            raise errors.SqlError(f'column "{name}" can only be updated to DEFAULT', sqlstate="428C9",
                                  detail=f'Column "{name}" is an identity column defined as GENERATED ALWAYS.')
        else:
            f = cp.coerce(cp.compile(eq.expression), c.type_oid, c.typmod).fn
        sets.append((i, f))
    return sets
