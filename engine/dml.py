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
from engine.executor import Filter, KeyLookup, TableScan
from engine.expr import CExpr, Compiler, Scope, const
from engine.keys import encode_key
from engine.planner import Planner, make_column, output_name

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


class _Writer:
    """Shared row checks: NOT NULL, key computation, uniqueness."""

    def __init__(self, td: TableDef, planner: Planner | None = None) -> None:
        self.td = td
        self.not_null = [i for i, c in enumerate(td.columns) if c.not_null]
        self.pad = td.pad_fn()
        self.checks: list[tuple[str, Fn]] = []
        if td.checks and planner is not None:
            import sqlglot

            cp = Compiler(planner.env, _scope(td))
            for name, text in td.checks:
                self.checks.append((name, cp.compile_bool(sqlglot.parse_one(text, read="postgres")).fn))

    def check_row(self, row: tuple, ctx: Any = None) -> None:
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
        for name, cols in td.uniques:
            vals = tuple(row[i] for i in cols)
            if None in vals or (old is not None and tuple(old[i] for i in cols) == vals):
                continue
            ctx.txn.lock(td.table_id, b"\xffu" + name.encode() + b"\x00" + encode_key(vals))
            pad = self.pad
            for k, other in ctx.txn.scan(td.table_id, ctx.store.snapshot()):
                if pad is not None:
                    other = pad(other)
                if k != key and tuple(other[i] for i in cols) == vals:
                    raise errors.UniqueViolation(
                        f'duplicate key value violates unique constraint "{name}"',
                        detail=f"Key ({', '.join(td.columns[i].name for i in cols)})=({_fmt_vals(vals)}) already exists.")


class _Returning:
    def __init__(self, planner: Planner, td: TableDef, node: exp.Expression | None, alias: str | None) -> None:
        self.fns: list[Fn] | None = None
        self.columns: list[Column] | None = None
        if node is None:
            return
        scope = _scope(td, alias)
        items = planner._expand_stars(node.expressions, scope)
        cp = Compiler(planner.env, scope)
        outs = [cp.compile(e.this if isinstance(e, exp.Alias) else e) for e in items]
        self.fns = [c.fn for c in outs]
        self.columns = [make_column(output_name(e), c) for e, c in zip(items, outs)]

    def row(self, row: tuple, ctx: Any) -> tuple:
        return tuple(f(row, ctx) for f in self.fns)  # type: ignore[union-attr]


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
        if cols_node:
            positions = []
            for ident in cols_node:
                i = td.column_index(ident.name)
                if i is None:
                    raise errors.UndefinedColumn(f'column "{ident.name}" of relation "{td.name}" does not exist')
                positions.append(i)
        else:
            positions = list(range(len(td.columns)))
        self.positions = positions
        if node.args.get("conflict") is not None:
            raise errors.FeatureNotSupported("ON CONFLICT is not supported yet")
        defaults = {i: default_expr(planner, td, i) for i in range(len(td.columns))}
        self.fill = [(i, defaults[i].fn) for i in range(len(td.columns))
                     if i not in positions and td.columns[i].default is not None]
        src = node.expression
        self.values: list[list[Fn]] | None = None
        self.source = None
        cp = Compiler(planner.env, None)
        if isinstance(src, exp.Values) and not has_subquery(src):
            self.values = []
            for tup in src.expressions:
                items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
                if len(items) > len(positions):
                    raise errors.SyntaxErr("INSERT has more expressions than target columns")
                fns = []
                for pos, e in zip(positions, items):
                    c = td.columns[pos]
                    fns.append(defaults[pos].fn if _is_default(e) else cp.coerce(cp.compile(e), c.type_oid, c.typmod).fn)
                for pos in positions[len(items):]:
                    fns.append(defaults[pos].fn)
                self.values.append(fns)
        else:
            plan = planner.plan_query(src)
            if len(plan.columns) > len(positions):
                raise errors.SyntaxErr("INSERT has more expressions than target columns")
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
        for row in self._rows(ctx):
            w.check_row(row, ctx)
            key = w.key_of(row, ctx)
            w.claim_key(key, row, ctx)
            if td.uniques:
                w.check_uniques(key, row, ctx)
            ctx.txn.put(td.table_id, key, row)
            count += 1
            if self.returning.fns is not None:
                out.append(self.returning.row(row, ctx))
        return f"INSERT 0 {count}", out


def has_subquery(node: exp.Expression) -> bool:
    return any(True for _ in node.find_all(exp.Select))


def _target_path(planner: Planner, node: exp.Expression, td: TableDef, alias: str | None) -> tuple[Any, Scope]:
    scope = _scope(td, alias)
    where = node.args.get("where")
    op = planner.access_path(TableScan(td.table_id, td.pad_fn()), scope, td, where.this if where is not None else None)
    return op, scope


class UpdatePlan:
    def __init__(self, planner: Planner, node: exp.Update) -> None:
        if node.args.get("from_") or node.args.get("from"):
            raise errors.FeatureNotSupported("UPDATE ... FROM is not supported yet")
        td = planner.lookup_table(node.this)
        planner.tables.add(td.table_id)
        alias = node.this.alias or None
        self.td = td
        self.writer = _Writer(td, planner)
        self.path, scope = _target_path(planner, node, td, alias or td.name)
        cp = Compiler(planner.env, scope)
        sets = []
        for eq in node.expressions:
            col = eq.this
            i = td.column_index(col.name)
            if i is None:
                raise errors.UndefinedColumn(f'column "{col.name}" of relation "{td.name}" does not exist')
            c = td.columns[i]
            if _is_default(eq.expression):
                f = default_expr(planner, td, i).fn
            else:
                f = cp.coerce(cp.compile(eq.expression), c.type_oid, c.typmod).fn
            sets.append((i, f))
        self.sets = sets
        self.pk_changes = any(i in td.pk for i, _ in sets)
        self.returning = _Returning(planner, td, node.args.get("returning"), alias)
        self.columns = self.returning.columns

    def run(self, ctx: Any) -> tuple[str, list]:
        td, w, txn = self.td, self.writer, ctx.txn
        tid = td.table_id
        targets = list(self.path.pairs(ctx))
        out = []
        for key, old in targets:
            txn.lock_for_update(tid, key, ctx.snapshot)
            new = list(old)
            for i, f in self.sets:
                new[i] = f(old, ctx)
            row = tuple(new)
            w.check_row(row, ctx)
            if self.pk_changes:
                nkey = w.key_of(row, ctx)
                if nkey != key:
                    w.claim_key(nkey, row, ctx)
                    txn.put(tid, key, None)
                    key = nkey
            if td.uniques:
                w.check_uniques(key, row, ctx, old)
            txn.put(tid, key, row)
            if self.returning.fns is not None:
                out.append(self.returning.row(row, ctx))
        return f"UPDATE {len(targets)}", out


class DeletePlan:
    def __init__(self, planner: Planner, node: exp.Delete) -> None:
        if node.args.get("using"):
            raise errors.FeatureNotSupported("DELETE ... USING is not supported yet")
        td = planner.lookup_table(node.this)
        planner.tables.add(td.table_id)
        alias = node.this.alias or None
        self.td = td
        self.path, _ = _target_path(planner, node, td, alias or td.name)
        self.returning = _Returning(planner, td, node.args.get("returning"), alias)
        self.columns = self.returning.columns

    def run(self, ctx: Any) -> tuple[str, list]:
        txn, tid = ctx.txn, self.td.table_id
        targets = list(self.path.pairs(ctx))
        out = []
        for key, old in targets:
            txn.lock_for_update(tid, key, ctx.snapshot)
            txn.put(tid, key, None)
            if self.returning.fns is not None:
                out.append(self.returning.row(old, ctx))
        return f"DELETE {len(targets)}", out


__all__ = ["InsertPlan", "UpdatePlan", "DeletePlan", "KeyLookup", "Filter"]
